"""Configuration from INTEROPS_* variables: defaults, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ConfigError, Settings


def test_defaults_are_safe_for_a_laptop() -> None:
    settings = Settings.from_env({})
    assert settings.grpc_address == "127.0.0.1:50051"
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.tracing_exporter == "none"  # spans go nowhere unless configured


def test_values_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "INTEROPS_GRPC_ADDRESS": "0.0.0.0:6000",
            "INTEROPS_DATABASE_URL": "postgresql+psycopg://db/interops",
            "INTEROPS_DATA_DIR": "/srv/interops",
            "INTEROPS_TRACING_EXPORTER": "OTLP",
            "INTEROPS_MAX_IMPORT_BYTES": "1000",
        }
    )
    assert settings.grpc_address == "0.0.0.0:6000"
    assert settings.effective_database_url == "postgresql+psycopg://db/interops"
    assert settings.data_dir == Path("/srv/interops")
    assert settings.tracing_exporter == "otlp"
    assert settings.max_import_bytes == 1000


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INTEROPS_TRACING_EXPORTER", "zipkin"),
        ("INTEROPS_GRPC_ADDRESS", "localhost"),
        ("INTEROPS_SHUTDOWN_GRACE_SECONDS", "soon"),
        ("INTEROPS_MAX_IMPORT_BYTES", "-1"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_the_doors_addresses_and_their_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("cert")
    key.write_text("key")
    assert Settings.from_env({}).http_address == "127.0.0.1:8080"
    assert Settings.from_env({"INTEROPS_HTTP_ADDRESS": "off"}).http_address == ""
    served = Settings.from_env({"INTEROPS_HTTP_ADDRESS": "0.0.0.0:8443",
                                "INTEROPS_HTTP_TLS_CERT": str(cert),
                                "INTEROPS_HTTP_TLS_KEY": str(key)})  # fmt: skip
    assert (served.http_address, served.http_tls_cert) == ("0.0.0.0:8443", str(cert))
    with pytest.raises(ConfigError, match="INTEROPS_HTTP_ADDRESS"):
        Settings.from_env({"INTEROPS_HTTP_ADDRESS": "8080"})
    with pytest.raises(ConfigError, match="go together"):
        Settings.from_env({"INTEROPS_HTTP_TLS_CERT": str(cert)})
    with pytest.raises(ConfigError, match="go together"):
        Settings.from_env({"INTEROPS_GRPC_TLS_KEY": str(key)})
    with pytest.raises(ConfigError, match="INTEROPS_GRPC_TLS_CLIENT_CA"):
        Settings.from_env({"INTEROPS_GRPC_TLS_CLIENT_CA": str(cert)})
    with pytest.raises(ConfigError, match="INTEROPS_GRPC_TLS_CERT: no such file"):
        Settings.from_env({"INTEROPS_GRPC_TLS_CERT": str(tmp_path / "none.pem"),
                           "INTEROPS_GRPC_TLS_KEY": str(key)})  # fmt: skip
    mutual = Settings.from_env({"INTEROPS_GRPC_TLS_CERT": str(cert),
                                "INTEROPS_GRPC_TLS_KEY": str(key),
                                "INTEROPS_GRPC_TLS_CLIENT_CA": str(cert)})  # fmt: skip
    assert mutual.grpc_tls_client_ca == str(cert)
