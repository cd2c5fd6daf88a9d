"""The doors over TLS, with certificates made by the test: the gRPC door (TLS 1.3 with any
current client; the CLI, the client and an organism's credentials speak it), the HTTP door
(TLS 1.3 only), and mutual TLS, where an organism's client certificate must hold a key it
published in the trust directory."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from clients.client import Client
from clients.errors import Unauthenticated, Unavailable
from clients.token_credentials import OrganismCredentials
from registry.trust.directory_store import DirectoryStore, KeyKind
from registry.trust.tls_pins import pin_of_certificate
from tests.certificates import Issued, TestAuthority
from tests.running_node import RunningNode
from tests.running_web import RunningWeb
from tests.web_timeouts import HTTP_TIMEOUT
from token_suite.keys import write_private_key

REGISTRY = "interops.registry.v1.RegistryService"
SIRET = "73282932000074"


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> TestAuthority:
    return TestAuthority(tmp_path_factory.mktemp("ca"))


def _node(directory: Path, server: Issued, client_ca: Path | None = None) -> RunningNode:
    return RunningNode(f"sqlite:///{directory / 'node.db'}", directory,
                       grpc_tls_cert=str(server.cert), grpc_tls_key=str(server.key),
                       grpc_tls_client_ca=str(client_ca or ""))  # fmt: skip


@pytest.fixture(scope="module")
def tls_node(
    authority: TestAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningNode]:
    node = _node(tmp_path_factory.mktemp("tls"), authority.issue("node"))
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def mutual_node(
    authority: TestAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningNode]:
    node = _node(tmp_path_factory.mktemp("mtls"), authority.issue("mutual-node"),
                 authority.ca_file)  # fmt: skip
    try:
        yield node
    finally:
        node.stop()


def _tls(authority: TestAuthority, client: Issued | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        authority.ca_file.read_bytes(),
        client.key.read_bytes() if client else None,
        client.cert.read_bytes() if client else None,
    )


def _interops(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTEROPS_")}
    return subprocess.run([sys.executable, "-m", "clients.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False, env=env)  # fmt: skip


def _handshake(port: int, authority: TestAuthority, newest: ssl.TLSVersion) -> str:
    """The TLS version a handshake with the door settles on, offering versions up to
    `newest`."""
    context = ssl.create_default_context(cafile=str(authority.ca_file))
    context.maximum_version = newest
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped,
    ):
        return str(wrapped.version())


def test_the_grpc_door_speaks_tls_with_its_certificate(
    tls_node: RunningNode, authority: TestAuthority, tmp_path: Path
) -> None:
    assert _handshake(tls_node.port, authority, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    tls = _tls(authority)
    urssaf = tls_node.organism("URSSAF")
    credentials = OrganismCredentials(tls_node.address, urssaf, [REGISTRY], tls=tls)
    with Client(tls_node.address, credentials=credentials, tls=tls) as client:
        assert client.check_health()
        assert client.validate_siret(SIRET).message  # answered: unknown here
    with Client(tls_node.address, timeout=5) as plain, pytest.raises(Unavailable):
        plain.check_health()  # plaintext is not spoken there
    key_file = tmp_path / "urssaf.pem"
    write_private_key(urssaf.key, key_file)
    as_urssaf = ("--address", tls_node.address, "--organism", "URSSAF", "--key", str(key_file))
    done = _interops(*as_urssaf, "--tls-ca", str(authority.ca_file), "registry", "validate", SIRET)
    assert done.returncode in (0, 1) and SIRET in done.stdout, done.stderr
    refused = _interops(*as_urssaf, "registry", "validate", SIRET)
    assert refused.returncode == 2 and "cannot reach the node" in refused.stderr


def test_the_http_door_takes_tls_1_3_only(tls_node: RunningNode, authority: TestAuthority) -> None:
    server = authority.issue("web")
    web = RunningWeb(tls_node, http_tls_cert=str(server.cert), http_tls_key=str(server.key))
    try:
        trusted = ssl.create_default_context(cafile=str(authority.ca_file))
        assert (
            httpx.get(f"{web.url}/signin", verify=trusted, timeout=HTTP_TIMEOUT).status_code == 200
        )
        assert _handshake(web.port, authority, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
        with pytest.raises(ssl.SSLError):
            _handshake(web.port, authority, ssl.TLSVersion.TLSv1_2)
    finally:
        web.stop()


def test_mutual_tls_binds_an_organisms_certificate_to_its_directory_key(
    mutual_node: RunningNode, authority: TestAuthority, tmp_path: Path
) -> None:
    node = mutual_node
    urssaf, cnav = node.organism("URSSAF"), node.organism("CNAV", "CNAV")
    urssaf_cert, cnav_cert = (
        authority.issue("urssaf", client=True),
        authority.issue("cnav", client=True),
    )
    directory = DirectoryStore(node.node.engine)
    urssaf_pin = directory.add_key("URSSAF", pin_of_certificate(urssaf_cert.cert.read_bytes()),
                                   kind=KeyKind.TLS)  # fmt: skip
    directory.add_key("CNAV", pin_of_certificate(cnav_cert.cert.read_bytes()), kind=KeyKind.TLS)
    node.node.trust.refresh()

    def validate(signer_cert: Issued | None, signer: object = urssaf) -> bool:
        tls = _tls(authority, signer_cert)
        credentials = OrganismCredentials(node.address, signer, [REGISTRY], tls=tls)  # type: ignore[arg-type]
        with Client(node.address, credentials=credentials, tls=tls, timeout=10) as client:
            return bool(client.validate_siret(SIRET).message)

    assert validate(urssaf_cert)
    with pytest.raises(Unauthenticated) as other:  # CNAV's certificate, URSSAF's chain
        validate(cnav_cert)
    assert other.value.reason == "CLIENT_CERTIFICATE"
    unpublished = authority.issue("urssaf-unpublished", client=True)
    with pytest.raises(Unauthenticated):  # signed by the CA, but not a key URSSAF published
        validate(unpublished)
    with pytest.raises(Unavailable):  # no certificate: no handshake
        validate(None)
    assert validate(cnav_cert, cnav)
    # A person's chain (held by a session key, not an organism) needs only a certificate the
    # CA signed.
    session = node.session_credentials([REGISTRY])
    with Client(node.address, credentials=session, tls=_tls(authority, unpublished)) as person:
        assert person.validate_siret(SIRET).message
    # The command line, as URSSAF's system in mutual TLS.
    key_file = tmp_path / "urssaf.pem"
    write_private_key(urssaf.key, key_file)
    done = _interops("--address", node.address, "--organism", "URSSAF", "--key", str(key_file),
                     "--tls-ca", str(authority.ca_file), "--tls-cert", str(urssaf_cert.cert),
                     "--tls-key", str(urssaf_cert.key), "registry", "validate", SIRET)  # fmt: skip
    assert done.returncode in (0, 1) and SIRET in done.stdout, done.stderr
    # A retired TLS key stops opening the door.
    directory.retire_key(urssaf_pin)
    node.node.trust.refresh()
    with pytest.raises(Unauthenticated):
        validate(urssaf_cert)
