"""The node's configuration, read from INTEROPS_* environment variables in this one place.

Defaults are safe for a laptop: embedded SQLite under ./var, loopback ports, no span export.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clients.tracing import EXPORTERS as TRACING_EXPORTERS
from server.notify.dispatch import MailSettings


class ConfigError(ValueError):
    """A configuration variable has a value the node cannot use."""


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, allowed[0]).lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the node can be told; see README, "Configuration"."""

    grpc_address: str = "127.0.0.1:50051"
    data_dir: Path = Path("var")
    database_url: str = ""
    tracing_exporter: str = "none"
    service_name: str = "interops-backbone"
    shutdown_grace_seconds: float = 10.0
    max_import_bytes: int = 16 * 1024**3
    feed_poll_seconds: float = 0.5
    # A declared link with no DSN for more months than this has ended.
    link_idle_months: int = 3
    cache_entries: int = 200_000
    log_level: str = "INFO"
    # "text" (one line: time, level, logger, message) or "json" (one JSON object a line, for a
    # log collector).
    log_format: str = "text"
    issuer_organism: str = "NET-ENTREPRISES"
    token_leeway_seconds: float = 30.0
    # Sign-in attempts one client address may make in a minute, at every door and node together
    # (registry/trust/sign_in_limits.py); a success gives its attempt back.
    sign_in_attempts_a_minute: int = 20
    directory_lifetime_seconds: float = 3600.0
    directory_refetch_seconds: float = 30.0
    # How long a published revocation list is valid: an offline verifier that cannot refresh
    # it refuses every chain after that (fail closed).
    revocation_list_seconds: float = 90.0
    max_deposit_bytes: int = 2 * 1024**3
    # A directory of routing rule files (one JSON per organism); empty: the packaged ones.
    routing_rules_dir: str = ""
    mail: MailSettings = field(default_factory=MailSettings)
    notify_backoff_seconds: float = 30.0
    notify_max_attempts: int = 6
    audit_checkpoint_records: int = 1000
    audit_checkpoint_seconds: float = 60.0
    # The NIR keyring file (registry/kernel/nir_keyring.py); empty: <data dir>/keys/nir.keyring.
    nir_keyring: str = ""
    # The web adapter (server/web/): its address ("" or "off": not served) and, to serve it
    # over TLS, a certificate and its key (PEM files).
    http_address: str = "127.0.0.1:8080"
    http_tls_cert: str = ""
    http_tls_key: str = ""
    # The gRPC door over TLS: a certificate (chain) and its key (PEM files); with a client CA,
    # mutual TLS: every caller presents a certificate the CA signed, and an organism's must
    # hold a key it published in the trust directory (kind TLS).
    grpc_tls_cert: str = ""
    grpc_tls_key: str = ""
    grpc_tls_client_ca: str = ""
    # How long the node keeps spans (its own and those organisms send to its OTLP collector);
    # 0: it keeps none (its collector accepts and forgets them).
    trace_retention_hours: float = 72.0
    # A span for every database statement (its text, never its parameters), under the call's:
    # for finding a slow query; off by default (a deposit's way runs a few hundred statements).
    trace_statements: bool = False
    # How long the sealed files of a finished deposit and its shares are kept once nothing of
    # it is owed (rejected, or every delivery acknowledged); 0: kept for ever.
    dsn_retention_days: float = 0.0
    # How long work a node claims (deposits to validate and route, e-mails to send) stays its
    # own without being renewed: a node killed mid-work leaves it to the others after this.
    claim_seconds: float = 60.0
    # Where sealed deposit files and shares are kept: "auto" (in the database when it is
    # PostgreSQL, so every node sharing it reads them; else under <data dir>/dsn), "database"
    # or "files" (under <data dir>/dsn, a volume the nodes share).
    sealed_files: str = "auto"

    @property
    def nir_keyring_path(self) -> Path:
        """Where the NIR keyring is."""
        default = self.data_dir / "keys" / "nir.keyring"
        return Path(self.nir_keyring) if self.nir_keyring else default

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'interops.db'}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Reads INTEROPS_* variables; raises ConfigError naming the variable at fault."""
        env = os.environ if environ is None else environ

        def number(name: str, default: float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, not {raw!r}") from None
            if value < 0:
                raise ConfigError(f"{name} must not be negative")
            return value

        exporter = env.get("INTEROPS_TRACING_EXPORTER", cls.tracing_exporter).lower()
        if exporter not in TRACING_EXPORTERS:
            raise ConfigError(
                f"INTEROPS_TRACING_EXPORTER must be one of {', '.join(TRACING_EXPORTERS)}"
            )
        if exporter == "interops":  # what organisms send to the node, which keeps its own
            exporter = "none"
        address = env.get("INTEROPS_GRPC_ADDRESS", cls.grpc_address)
        if ":" not in address:
            raise ConfigError("INTEROPS_GRPC_ADDRESS must be HOST:PORT")
        http_address = env.get("INTEROPS_HTTP_ADDRESS", cls.http_address)
        if http_address.lower() in ("", "off"):
            http_address = ""
        elif ":" not in http_address:
            raise ConfigError("INTEROPS_HTTP_ADDRESS must be HOST:PORT or off")
        tls_cert, tls_key = (
            env.get("INTEROPS_HTTP_TLS_CERT", ""),
            env.get("INTEROPS_HTTP_TLS_KEY", ""),
        )
        if bool(tls_cert) != bool(tls_key):
            raise ConfigError("INTEROPS_HTTP_TLS_CERT and INTEROPS_HTTP_TLS_KEY go together")
        grpc_cert, grpc_key, client_ca = (
            env.get("INTEROPS_GRPC_TLS_CERT", ""),
            env.get("INTEROPS_GRPC_TLS_KEY", ""),
            env.get("INTEROPS_GRPC_TLS_CLIENT_CA", ""),
        )
        if bool(grpc_cert) != bool(grpc_key):
            raise ConfigError("INTEROPS_GRPC_TLS_CERT and INTEROPS_GRPC_TLS_KEY go together")
        if client_ca and not grpc_cert:
            raise ConfigError("INTEROPS_GRPC_TLS_CLIENT_CA (mutual TLS) needs "
                              "INTEROPS_GRPC_TLS_CERT and INTEROPS_GRPC_TLS_KEY")  # fmt: skip
        for name, path in (("INTEROPS_HTTP_TLS_CERT", tls_cert), ("INTEROPS_HTTP_TLS_KEY", tls_key),
                           ("INTEROPS_GRPC_TLS_CERT", grpc_cert),
                           ("INTEROPS_GRPC_TLS_KEY", grpc_key),
                           ("INTEROPS_GRPC_TLS_CLIENT_CA", client_ca)):  # fmt: skip
            if path and not Path(path).is_file():
                raise ConfigError(f"{name}: no such file {path}")
        return cls(
            grpc_tls_cert=grpc_cert,
            grpc_tls_key=grpc_key,
            grpc_tls_client_ca=client_ca,
            grpc_address=address,
            http_address=http_address,
            http_tls_cert=tls_cert,
            http_tls_key=tls_key,
            data_dir=Path(env.get("INTEROPS_DATA_DIR", str(cls.data_dir))),
            nir_keyring=env.get("INTEROPS_NIR_KEYRING", ""),
            database_url=env.get("INTEROPS_DATABASE_URL", ""),
            tracing_exporter=exporter,
            service_name=env.get("INTEROPS_SERVICE_NAME", cls.service_name),
            shutdown_grace_seconds=number(
                "INTEROPS_SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds
            ),
            max_import_bytes=int(number("INTEROPS_MAX_IMPORT_BYTES", cls.max_import_bytes)),
            feed_poll_seconds=number("INTEROPS_FEED_POLL_SECONDS", cls.feed_poll_seconds),
            link_idle_months=int(number("INTEROPS_LINK_IDLE_MONTHS", cls.link_idle_months)),
            cache_entries=int(number("INTEROPS_CACHE_ENTRIES", cls.cache_entries)),
            log_level=env.get("INTEROPS_LOG_LEVEL", cls.log_level).upper(),
            log_format=_choice(env, "INTEROPS_LOG_FORMAT", ("text", "json")),
            issuer_organism=env.get("INTEROPS_ISSUER_ORGANISM", cls.issuer_organism),
            token_leeway_seconds=number("INTEROPS_TOKEN_LEEWAY_SECONDS", cls.token_leeway_seconds),
            sign_in_attempts_a_minute=max(
                1, int(number("INTEROPS_SIGN_IN_ATTEMPTS_A_MINUTE", cls.sign_in_attempts_a_minute))
            ),
            directory_lifetime_seconds=number(
                "INTEROPS_DIRECTORY_LIFETIME_SECONDS", cls.directory_lifetime_seconds
            ),
            directory_refetch_seconds=number(
                "INTEROPS_DIRECTORY_REFETCH_SECONDS", cls.directory_refetch_seconds
            ),
            revocation_list_seconds=number(
                "INTEROPS_REVOCATION_LIST_SECONDS", cls.revocation_list_seconds
            ),
            max_deposit_bytes=int(number("INTEROPS_MAX_DEPOSIT_BYTES", cls.max_deposit_bytes)),
            routing_rules_dir=env.get("INTEROPS_ROUTING_RULES_DIR", ""),
            mail=MailSettings(
                host=env.get("INTEROPS_SMTP_HOST", "127.0.0.1"),
                port=int(number("INTEROPS_SMTP_PORT", 25)),
                tls=_choice(env, "INTEROPS_SMTP_TLS", ("none", "starttls", "tls")),
                ca_file=env.get("INTEROPS_SMTP_CA_FILE", ""),
                user=env.get("INTEROPS_SMTP_USER", ""),
                password=env.get("INTEROPS_SMTP_PASSWORD", ""),
                sender=env.get("INTEROPS_MAIL_FROM", MailSettings.sender),
                public_url=env.get("INTEROPS_PUBLIC_URL", MailSettings.public_url),
            ),
            notify_backoff_seconds=number(
                "INTEROPS_NOTIFY_BACKOFF_SECONDS", cls.notify_backoff_seconds
            ),
            notify_max_attempts=int(
                number("INTEROPS_NOTIFY_MAX_ATTEMPTS", cls.notify_max_attempts)
            ),
            audit_checkpoint_records=int(
                number("INTEROPS_AUDIT_CHECKPOINT_RECORDS", cls.audit_checkpoint_records)
            ),
            audit_checkpoint_seconds=number(
                "INTEROPS_AUDIT_CHECKPOINT_SECONDS", cls.audit_checkpoint_seconds
            ),
            dsn_retention_days=number("INTEROPS_DSN_RETENTION_DAYS", cls.dsn_retention_days),
            claim_seconds=max(1.0, number("INTEROPS_CLAIM_SECONDS", cls.claim_seconds)),
            sealed_files=_choice(env, "INTEROPS_SEALED_FILES", ("auto", "database", "files")),
            trace_retention_hours=number(
                "INTEROPS_TRACE_RETENTION_HOURS", cls.trace_retention_hours
            ),
            trace_statements=_choice(env, "INTEROPS_TRACE_STATEMENTS", ("off", "on")) == "on",
        )
