"""TLS for the command line's calls to the node: the CA that signed the node's certificate
(--tls-ca, or the system's with --tls) and, for mutual TLS, the caller's own certificate and key
(--tls-cert, --tls-key)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `interops --help` loads no grpc
    import grpc


def add_options(parser: argparse.ArgumentParser) -> None:
    """The TLS options of the command line, defaulting to their variables."""
    env = os.environ.get
    parser.add_argument(
        "--tls",
        action="store_true",
        default=env("INTEROPS_TLS", "") not in ("", "0", "off"),
        help="call the node over TLS, its certificate checked against the system's CAs "
        "($INTEROPS_TLS=1); --tls-ca implies it",
    )
    parser.add_argument(
        "--tls-ca",
        type=Path,
        default=env("INTEROPS_TLS_CA") or None,
        help="the CA certificate (PEM) that signed the node's: $INTEROPS_TLS_CA",
    )
    parser.add_argument(
        "--tls-cert",
        type=Path,
        default=env("INTEROPS_TLS_CERT") or None,
        help="mutual TLS: this caller's certificate (PEM): $INTEROPS_TLS_CERT",
    )
    parser.add_argument(
        "--tls-key",
        type=Path,
        default=env("INTEROPS_TLS_KEY") or None,
        help="mutual TLS: its private key (PEM): $INTEROPS_TLS_KEY",
    )


def _read(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise ValueError(f"{path}: no such file: give {what}")
    return path.read_bytes()


def channel_credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    """The channel's TLS as the options ask (None: plaintext); ValueError for a half-given
    client certificate or a missing file."""
    import grpc

    ca, cert, key = args.tls_ca, args.tls_cert, args.tls_key
    if bool(cert) != bool(key):
        raise ValueError("--tls-cert and --tls-key go together (or $INTEROPS_TLS_CERT and "
                         "$INTEROPS_TLS_KEY): the caller's certificate and its key")  # fmt: skip
    if not (args.tls or ca or cert):
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca, "the CA certificate with --tls-ca") if ca else None,
        private_key=_read(key, "the private key with --tls-key") if key else None,
        certificate_chain=_read(cert, "the certificate with --tls-cert") if cert else None,
    )
