"""A real node for tests: started in-process on a loopback port chosen by the system, with its
own event loop in a background thread, so that tests call it through real channels."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from interops.token.v1 import token_pb2
from sqlalchemy import Engine

from clients.client import Client
from clients.token_credentials import ChainCredentials, OrganismCredentials
from registry.dsn.routing import load_rules
from registry.trust.directory_store import DirectoryStore, KeyKind
from server.cli.demo_trust import ORGANISMS as DEMO_ORGANISMS
from server.config import Settings
from server.node import Node
from token_suite.chain import Signer, Terms, grant, issue_root, session_holder, session_signer
from token_suite.encryption_keys import generate_encryption_key, public_of
from token_suite.keys import generate, key_id_of, public_bytes, write_private_key
from token_suite.profiles import PORTAL

SERVICES = ("interops.registry.v1.RegistryService", "interops.operation.v1.OperationService")

T = TypeVar("T")


class RunningNode:
    """A node serving on 127.0.0.1:<port> until stop()."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        extra_handlers: Sequence[Any] = (),
        extra_rights: dict[str, str] | None = None,
        **settings: Any,
    ) -> None:
        self.settings = replace(
            Settings(),
            grpc_address="127.0.0.1:0",
            database_url=database_url,
            data_dir=data_dir,
            tracing_exporter="none",
            shutdown_grace_seconds=2.0,
            directory_refetch_seconds=0.0,
            # The tests' DSNs declare fixed months (March 2026 mostly): their links would go
            # idle as the calendar moves on. Tests of idle links set their own limit.
            **{"link_idle_months": 1200, "feed_poll_seconds": 0.05, **settings},
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.node: Node = self.run(self._create(extra_handlers, extra_rights))
        self.port = self.run(self.node.start())
        self.address = f"127.0.0.1:{self.port}"
        self.operator = self.organism("OPERATOR", rights=("registry.read", "registry.import"))
        self.operator_key_file = data_dir / "operator.pem"
        write_private_key(self.operator.key, self.operator_key_file)
        # The command-line options that call as the operator.
        self.cli_auth = ("--organism", "OPERATOR", "--key", str(self.operator_key_file))

    async def _create(
        self, extra_handlers: Sequence[Any], extra_rights: dict[str, str] | None
    ) -> Node:
        return Node(self.settings, extra_handlers, extra_rights)

    def organism(
        self, code: str, kind: str = "URSSAF", rights: Sequence[str] = ("registry.read",)
    ) -> Signer:
        """An organism in the node's directory (see `provision_organism`)."""
        return provision_organism(self.node.engine, code, kind, rights)

    def encryption_keys(self) -> dict[str, bytes]:
        """Publishes a new encryption key for every organism the node routes shares to (see
        `provision_routing_encryption_keys`), so that its deposits can be routed."""
        rules = self.settings.routing_rules_dir
        return provision_routing_encryption_keys(self.node.engine, Path(rules) if rules else None)

    def session_credentials(self, audience: Sequence[str] = SERVICES) -> ChainCredentials:
        """A PORTAL chain issued by the node's identity provider to a session key of its own
        (made here, as the web adapter makes one per signed-in person), read right only, with
        that key to prove every call."""
        issuer = self.node.trust.issuer
        session = session_signer(issuer.organism)
        terms = Terms(holder=session_holder(session), profile=PORTAL, audience=tuple(audience),
                      grants=grant("registry.read"))  # fmt: skip
        return ChainCredentials(issue_root(issuer, "organism:OPERATOR", terms), session)

    def sign_in(
        self, siret: str, last_name: str, first_name: str, password: str, **terms: Any
    ) -> ChainCredentials:
        """A declarant's chain (IssueTokenRequest `terms`: audience, profile...), held by a new
        session key of the node's identity provider, as the web adapter signs a person in, with
        that key to prove every call."""
        return declarant_chain(self.address, siret, last_name, first_name, password,
                               portal=self.node.trust.issuer.organism, **terms)  # fmt: skip

    def credentials(
        self, signer: Signer | None = None, audience: Sequence[str] = SERVICES
    ) -> OrganismCredentials:
        """Credentials of an organism (the operator by default) for the node's services."""
        return OrganismCredentials(self.address, signer or self.operator, audience)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine on the node's loop and returns its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def stop(self) -> None:
        """Stops the node and its loop."""
        self.run(self.node.stop(grace=1.0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def declarant_chain(
    address: str,
    siret: str,
    last_name: str,
    first_name: str,
    password: str,
    portal: str = "NET-ENTREPRISES",
    **terms: Any,
) -> ChainCredentials:
    """`RunningNode.sign_in` against any node at `address` whose identity provider is
    `portal`."""
    session = session_signer(portal)
    with Client(address, timeout=30) as anonymous:
        issued = anonymous.sign_in(siret, last_name, first_name, password,
                                   holder=session_party(session), **terms)  # fmt: skip
    return ChainCredentials(issued.token, session)


def session_party(session: Signer) -> token_pb2.Party:
    """The IssueTokenRequest or DelegateTokenRequest holder naming a session key."""
    return token_pb2.Party(organism=session.organism, public_key=public_bytes(session.key))


def provision_organism(
    engine: Engine, code: str, kind: str = "URSSAF", rights: Sequence[str] = ("registry.read",)
) -> Signer:
    """An organism in the directory with a new key and these rights (everywhere); an existing
    organism gets one more key, and the rights it lacks."""
    store = DirectoryStore(engine)
    if code not in {organism.code for organism in store.snapshot(60).organisms}:
        store.add_organism(code, code.title(), kind)
    held = store.grants_of(code)
    for right in rights:
        if right not in held:
            store.grant(code, right)
    key = generate()
    store.add_key(code, public_bytes(key), valid_from=0)
    return Signer(code, key_id_of(public_bytes(key)), key)


def provision_encryption_key(engine: Engine, code: str, kind: str = "URSSAF") -> bytes:
    """A new encryption key published for the organism (added without rights when absent): its
    shares are sealed to it from now on. Returns the raw X25519 private key."""
    store = DirectoryStore(engine)
    if code not in {organism.code for organism in store.snapshot(60).organisms}:
        store.add_organism(code, code.title(), kind)
    private = generate_encryption_key()
    store.add_key(code, public_of(private), valid_from=0, kind=KeyKind.ENCRYPTION)
    return private


def provision_routing_encryption_keys(
    engine: Engine, rules_dir: Path | None = None
) -> dict[str, bytes]:
    """A new encryption key for every organism of the routing rules (each added, without rights,
    when absent, of the demo's kind): shares are sealed to them, and a deposit is routed only
    once every organism concerned has one. The organism code -> its raw X25519 private key."""
    return {
        code: provision_encryption_key(engine, code, DEMO_ORGANISMS.get(code, ("", "OC"))[1])
        for code in load_rules(rules_dir)
    }
