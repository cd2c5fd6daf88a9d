"""TokenService and the auth interceptor on a real node: sign-in (held by a session key; no
lockout: tests/token/test_sign_in_doors.py has the limits), organisms' proofs, delegation and
verification on the last holder's proof, the chain of responsibility, revocation by a block's
signer or holder, single use across replicas, and the signed directory."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from interops.token.v1 import token_pb2 as t
from sqlalchemy import select, text

from clients.client import Client
from clients.errors import (
    Internal,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from clients.token_credentials import ChainCredentials
from registry.trust.declarant_store import DeclarantStore
from registry.trust.directory_store import DirectoryStore
from registry.trust.schema import declarants
from tests.running_node import RunningNode, provision_organism, session_party
from token_suite.chain import Signer, Terms, delegate, grant, session_signer
from token_suite.directory import DirectoryCache, open_directory
from token_suite.keys import key_id_of, public_bytes, read_private_key

REGISTRY = "interops.registry.v1.RegistryService"
FIRM_SIRET = "73282932000074"
CLIENT_SIREN = "552100554"
PORTAL = "NET-ENTREPRISES"


@pytest.fixture
def session() -> Signer:
    """A session key of the portal, as the web adapter makes one per signed-in person."""
    return session_signer(PORTAL)


@pytest.fixture(scope="module")
def declarant(node: RunningNode) -> tuple[str, str, str, str]:
    """A declarant of the firm with a read right over the firm and one client company."""
    DeclarantStore(node.node.engine).create(
        FIRM_SIRET, "Lefèvre", "Anne-Sophie", "correct horse",
        [("registry.read", FIRM_SIRET[:9]), ("registry.read", CLIENT_SIREN)],
    )  # fmt: skip
    return FIRM_SIRET, "Lefèvre", "Anne-Sophie", "correct horse"


@pytest.fixture(scope="module")
def cnav(node: RunningNode) -> Signer:
    return node.organism("CNAV", "CNAV")


@pytest.fixture
def anonymous(node: RunningNode) -> Iterator[Client]:
    with Client(node.address, timeout=30) as plain:
        yield plain


def test_a_declarant_signs_in_and_the_chain_verifies_with_its_perimeter(
    anonymous: Client, declarant: tuple[str, str, str, str], session: Signer
) -> None:
    # Accents, case and hyphens of the names do not matter.
    issued = anonymous.sign_in(FIRM_SIRET, "LEFEVRE", "anne sophie", declarant[3],
                               audience=[REGISTRY], holder=session_party(session))  # fmt: skip
    principal = anonymous.verify_token(issued.token, REGISTRY, session)
    assert principal.subject.startswith("declarant:")
    assert principal.profile == t.PROFILE_PORTAL
    assert {s for g in principal.grants for s in g.sirens} == {FIRM_SIRET[:9], CLIENT_SIREN}
    assert [(h.delegator.organism, h.holder.organism) for h in principal.hops] == [
        ("NET-ENTREPRISES", "NET-ENTREPRISES")
    ]
    assert principal.hops[0].holder.public_key == public_bytes(session.key)


def test_a_declarant_chain_names_its_session_key(
    anonymous: Client, declarant: tuple[str, str, str, str], cnav: Signer
) -> None:
    for holder in (None, t.Party(organism="NET-ENTREPRISES"),
                   t.Party(organism="CNAV", key_id=cnav.key_id),
                   t.Party(public_key=b"\x00" * 32)):  # fmt: skip
        with pytest.raises(InvalidArgument) as refused:
            anonymous.sign_in(*declarant, audience=[REGISTRY], holder=holder)
        assert refused.value.reason in {"HOLDER_KEY_REQUIRED", "BAD_KEY"}
    assert refused.value.reason == "BAD_KEY"  # a small-order key: anyone could "prove" with it


def test_the_database_holds_no_declarant_name(
    node: RunningNode, declarant: tuple[str, str, str, str]
) -> None:
    with node.node.engine.connect() as connection:
        rows = connection.execute(select(declarants)).all()
    dumped = repr(rows).lower()
    assert rows
    for secret in ("lefèvre", "lefevre", "anne-sophie", "anne sophie", "correct horse"):
        assert secret not in dumped


def test_a_declarant_may_not_ask_beyond_its_perimeter(
    anonymous: Client, declarant: tuple[str, str, str, str], session: Signer
) -> None:
    wider = t.Grant(right="registry.read", sirens=["999999990"])
    holder = session_party(session)
    with pytest.raises(PermissionDenied) as refused:
        anonymous.sign_in(*declarant, audience=[REGISTRY], grants=[wider], holder=holder)
    assert refused.value.reason == "GRANT_NOT_HELD"
    with pytest.raises(InvalidArgument) as refused_profile:
        anonymous.sign_in(*declarant, audience=[REGISTRY], profile=t.PROFILE_APPLICATION,
                          holder=holder)  # fmt: skip
    assert refused_profile.value.reason == "PROFILE_NOT_ALLOWED"


def test_repeated_failures_lock_nobody_out_and_unknown_accounts_look_the_same(
    node: RunningNode, anonymous: Client, session: Signer
) -> None:
    DeclarantStore(node.node.engine).create("35600000000048", "Roux", "Paul", "right one")
    terms = {"audience": [REGISTRY], "holder": session_party(session)}
    with pytest.raises(Unauthenticated) as unknown:
        anonymous.sign_in("35600000000048", "Roux", "Pierre", "right one", **terms)
    for _ in range(5):
        with pytest.raises(Unauthenticated) as wrong:
            anonymous.sign_in("35600000000048", "Roux", "Paul", "wrong", **terms)
        assert wrong.value.reason == unknown.value.reason == "INVALID_CREDENTIALS"
        assert wrong.value.message == unknown.value.message
    # Five failures are free: the owner comes in (the next ones would make everyone wait).
    assert anonymous.sign_in("35600000000048", "Roux", "Paul", "right one", **terms).token


def test_the_registry_refuses_calls_without_a_valid_chain(
    node: RunningNode, anonymous: Client, cnav: Signer
) -> None:
    with pytest.raises(Unauthenticated) as missing:
        anonymous.get_company("732829320")
    assert missing.value.reason == "TOKEN_MISSING"
    issued = anonymous.issue_organism_token(cnav, audience=["interops.other.v1.OtherService"])
    with (
        Client(node.address, credentials=ChainCredentials(issued.token, cnav)) as other,
        pytest.raises(PermissionDenied) as wrong_audience,
    ):
        other.get_company("732829320")
    assert wrong_audience.value.reason == "WRONG_AUDIENCE"
    issued = anonymous.issue_organism_token(cnav, audience=[REGISTRY])
    with (
        Client(node.address, credentials=ChainCredentials(issued.token)) as no_proof,
        pytest.raises(Unauthenticated) as proofless,
    ):
        no_proof.get_company("732829320")
    assert proofless.value.reason == "PROOF_REQUIRED"
    stranger = Signer("CNAV", "ed25519:0000000000000000", node.operator.key)
    with (
        Client(node.address, credentials=ChainCredentials(issued.token, stranger)) as forged,
        pytest.raises(Unauthenticated) as bad_proof,
    ):
        forged.get_company("732829320")
    assert bad_proof.value.reason == "BAD_PROOF"
    tampered = issued.token[:-1] + bytes([issued.token[-1] ^ 1])
    with (
        Client(node.address, credentials=ChainCredentials(tampered, cnav)) as broken,
        pytest.raises(Unauthenticated) as bad_signature,
    ):
        broken.get_company("732829320")
    assert bad_signature.value.reason == "BAD_SIGNATURE"


def _refused(node: RunningNode, credentials: ChainCredentials, kind: type[Exception]) -> str:
    with Client(node.address, credentials=credentials) as client, pytest.raises(kind) as caught:
        client.get_company("732829320")
    return str(caught.value.reason)  # type: ignore[attr-defined]


def test_a_read_right_reads_but_does_not_import(
    node: RunningNode, cnav: Signer, tmp_path: Path
) -> None:
    with Client(node.address, credentials=node.credentials(cnav)) as reader:
        assert reader.validate_siret("55210055400013").message
        stock = tmp_path / "StockUniteLegale.csv"
        stock.write_text("siren\n")
        with pytest.raises(PermissionDenied) as refused:
            reader.import_stock(stock)
    assert refused.value.reason == "MISSING_GRANT"


def test_a_proof_is_accepted_once(node: RunningNode, anonymous: Client, cnav: Signer) -> None:
    issued = anonymous.issue_organism_token(cnav, audience=[REGISTRY])
    replaying = _ReplayingCredentials(issued.token, cnav)
    with Client(node.address, credentials=replaying) as client:
        assert client.validate_siret("55210055400013").message
        with pytest.raises(Unauthenticated) as replayed:
            client.validate_siret("55210055400013")
    assert replayed.value.reason == "REPLAYED"


class _ReplayingCredentials(ChainCredentials):
    """Sends the first proof it made again on every call, as an eavesdropper would."""

    first: list[tuple[str, str | bytes]] | None = None

    def metadata(self, method: str) -> list[tuple[str, str | bytes]]:
        if self.first is None:
            self.first = list(super().metadata(method))
        return self.first


def test_a_chain_walks_through_portal_organisms_and_back_to_its_root(
    node: RunningNode,
    anonymous: Client,
    declarant: tuple[str, str, str, str],
    cnav: Signer,
    session: Signer,
) -> None:
    urssaf = node.organism("URSSAF-IDF", "URSSAF")
    root = anonymous.sign_in(*declarant, audience=[REGISTRY], max_hops=3, purpose="sign-in",
                             holder=session_party(session))  # fmt: skip
    # The portal's session hands the chain to CNAV's key (by the backbone) ...
    to_cnav = anonymous.delegate_token(
        root.token, session, holder=t.Party(organism="CNAV", key_id=cnav.key_id),
        profile=t.PROFILE_APPLICATION, purpose="pension file",
    )  # fmt: skip
    # ... CNAV narrows it offline for URSSAF's key, which calls the registry with it.
    to_urssaf = delegate(to_cnav.token, cnav, Terms(
        holder=urssaf.as_holder(), grants=grant("registry.read", sirens=[CLIENT_SIREN]),
        purpose="contributions check"))  # fmt: skip
    with Client(node.address, credentials=ChainCredentials(to_urssaf, urssaf)) as client:
        assert client.validate_siret("55210055400013").message
    principal = anonymous.verify_token(to_urssaf, REGISTRY, urssaf)
    walk = [(h.delegator.organism, h.holder.organism, h.purpose) for h in principal.hops]
    assert walk == [
        ("NET-ENTREPRISES", "NET-ENTREPRISES", "sign-in"),
        ("NET-ENTREPRISES", "CNAV", "pension file"),
        ("CNAV", "URSSAF-IDF", "contributions check"),
    ]
    assert [g.sirens for g in principal.grants] == [[CLIENT_SIREN]]
    # Widening through the backbone is refused with the library's reason.
    everything = t.Grant(right="registry.import", all_establishments=True)
    to_cnav_key = t.Party(organism="CNAV", key_id=cnav.key_id)
    with pytest.raises(PermissionDenied) as wider:
        anonymous.delegate_token(root.token, session, holder=to_cnav_key, grants=[everything])
    assert wider.value.reason == "GRANT_NOT_HELD"
    # The next holder names its key; only the session's chains are extended by the backbone.
    with pytest.raises(InvalidArgument) as keyless:
        anonymous.delegate_token(root.token, session, holder=t.Party(organism="CNAV"))
    assert keyless.value.reason == "HOLDER_KEY_REQUIRED"
    with pytest.raises(InvalidArgument) as not_its_key:
        anonymous.delegate_token(root.token, session,
                                 holder=t.Party(organism="CNAV", key_id=urssaf.key_id))  # fmt: skip
    assert not_its_key.value.reason == "UNKNOWN_KEY"
    with pytest.raises(PermissionDenied) as not_held:
        anonymous.delegate_token(to_cnav.token, cnav, holder=to_cnav_key)
    assert not_held.value.reason == "NOT_HOLDER"


def test_the_signer_of_a_block_revokes_it_and_every_chain_below_is_refused(
    node: RunningNode, anonymous: Client, cnav: Signer
) -> None:
    root = anonymous.issue_organism_token(cnav, audience=[REGISTRY], max_hops=2)
    urssaf = node.organism("URSSAF-NORD", "URSSAF")
    below = delegate(root.token, cnav, Terms(holder=urssaf.as_holder()))
    with Client(node.address, credentials=ChainCredentials(below, urssaf)) as client:
        assert client.validate_siret("55210055400013").message
        with pytest.raises(PermissionDenied) as not_signer:
            anonymous.revoke_token(below, 1, node.operator)
        assert not_signer.value.reason == "BAD_PROOF"
        revoked = anonymous.revoke_token(below, 1, cnav)
        assert len(revoked) == 32
        with pytest.raises(Unauthenticated) as refused:
            client.validate_siret("55210055400013")
    assert refused.value.reason == "REVOKED"


def test_the_holder_a_block_names_revokes_it(
    node: RunningNode, anonymous: Client, cnav: Signer
) -> None:
    urssaf = node.organism("URSSAF-EST", "URSSAF")
    root = anonymous.issue_organism_token(cnav, audience=[REGISTRY], max_hops=2)
    below = delegate(root.token, cnav, Terms(holder=urssaf.as_holder()))
    with pytest.raises(PermissionDenied) as not_its_holder:
        anonymous.revoke_token(below, 0, urssaf)  # block 0 is held by CNAV's key
    assert not_its_holder.value.reason == "BAD_PROOF"
    anonymous.revoke_token(below, 1, urssaf)
    assert _refused(node, ChainCredentials(below, urssaf), Unauthenticated) == "REVOKED"


def test_one_key_cannot_flood_the_revocation_list(node: RunningNode, anonymous: Client) -> None:
    """Revoking blocks made for the purpose would grow the published list past what offline
    verifiers take (they would then fail closed for everyone): one key revokes 60 a minute."""
    flooder = node.organism("FLOODER", "URSSAF")
    root = anonymous.issue_organism_token(flooder, audience=[REGISTRY], max_hops=2)
    made = [delegate(root.token, flooder, Terms(holder=flooder.as_holder())) for _ in range(61)]
    for block in made[:60]:
        anonymous.revoke_token(block, 1, flooder)
    with pytest.raises(ResourceExhausted) as flood:
        anonymous.revoke_token(made[60], 1, flooder)
    assert flood.value.reason == "TOO_MANY_REVOCATIONS"
    # Another key is not held back by the flooder's.
    cnav = node.organism("CNAV-FLOOD", "CNAV")
    other = anonymous.issue_organism_token(cnav, audience=[REGISTRY], max_hops=2)
    anonymous.revoke_token(delegate(other.token, cnav, Terms(holder=cnav.as_holder())), 1, cnav)


def test_the_principal_reaches_the_service(tmp_path: Path, database_url: str) -> None:
    async def echo(request: bytes, context: object) -> bytes:
        from server.rpc.auth_interceptor import current_principal

        chain = current_principal()
        return f"{chain.subject} via {chain.hops[-1].delegator.organism}".encode()

    handler = grpc.method_handlers_generic_handler(
        "test.Echo", {"Who": grpc.unary_unary_rpc_method_handler(echo)}
    )
    running = RunningNode(database_url, tmp_path, extra_handlers=[handler],
                          extra_rights={"test.Echo": "registry.read"})  # fmt: skip
    try:
        credentials = running.credentials(audience=["test.Echo"])
        with grpc.insecure_channel(running.address) as channel:
            who = channel.unary_unary("/test.Echo/Who", None, None)
            answer = who(b"", metadata=tuple(credentials.metadata("/test.Echo/Who")))
        assert answer == b"organism:OPERATOR via NET-ENTREPRISES"
    finally:
        running.stop()


def test_a_navigation_chain_is_single_use_across_replicas(
    tmp_path: Path, database_url: str
) -> None:
    first = RunningNode(database_url, tmp_path)
    second = RunningNode(database_url, tmp_path)  # same database and keys: a replica
    try:
        DeclarantStore(first.node.engine).create("44306184100047", "Nav", "Igator", "pw",
                                                 [("registry.read", "443061841")])  # fmt: skip
        navigation = first.sign_in("44306184100047", "Nav", "Igator", "pw",
                                   profile=t.PROFILE_NAVIGATION, audience=["SITE-B"])  # fmt: skip
        token, session = navigation.token, navigation.holder
        with Client(first.address) as one, Client(second.address) as other:
            assert one.verify_token(token, "SITE-B", session).profile == t.PROFILE_NAVIGATION
            with pytest.raises(Unauthenticated) as replayed:
                other.verify_token(token, "SITE-B", session)
            assert replayed.value.reason == "REPLAYED"
    finally:
        first.stop()
        second.stop()


def test_the_directory_is_signed_by_the_pinned_root_and_refetched_on_unknown_keys(
    node: RunningNode, anonymous: Client
) -> None:
    root_key = read_private_key(node.settings.data_dir / "keys" / "root.pem").public_key()
    pinned = {key_id_of(public_bytes(root_key)): root_key}
    signed = anonymous.get_directory()
    directory = open_directory(signed.SerializeToString(), pinned)
    assert {"NET-ENTREPRISES", "OPERATOR"} <= set(directory.organisms)
    with pytest.raises(Exception, match="UNTRUSTED_ROOT"):
        open_directory(signed.SerializeToString(), {"other": root_key})
    now = [time.time()]
    fetches: list[int] = []

    def fetch() -> bytes:
        fetches.append(1)
        return anonymous.get_directory().SerializeToString()

    cache = DirectoryCache(fetch, pinned, refetch_seconds=30, clock=lambda: now[0])
    assert cache.key(node.operator.key_id) is not None and len(fetches) == 1
    newcomer = provision_organism(node.node.engine, "LATECOMER", "OC")
    assert cache.key(newcomer.key_id) is None  # within 30 s of the last fetch: no refetch
    assert cache.key("ed25519:unknown") is None and len(fetches) == 1
    now[0] += 30
    assert cache.key(newcomer.key_id) is not None and len(fetches) == 2


def test_an_organism_sign_in_needs_a_fresh_proof_for_that_method(
    node: RunningNode, anonymous: Client, cnav: Signer
) -> None:
    unknown = Signer("NOBODY", cnav.key_id, cnav.key)
    with pytest.raises(Unauthenticated) as refused:
        anonymous.issue_organism_token(unknown, audience=[REGISTRY])
    assert refused.value.reason == "BAD_PROOF"
    with pytest.raises(Unauthenticated) as missing:
        anonymous._unary(anonymous.tokens.IssueToken, _organism_request("CNAV"))
    assert missing.value.reason == "PROOF_MISSING"


def _organism_request(code: str) -> object:
    from interops.token.v1 import token_service_pb2

    return token_service_pb2.IssueTokenRequest(
        organism=token_service_pb2.OrganismSignIn(organism=code),
        profile=t.PROFILE_APPLICATION, audience=[REGISTRY],
    )  # fmt: skip


def test_keys_rotate_and_a_retired_key_stops_signing_at_once(
    node: RunningNode, anonymous: Client
) -> None:
    old = node.organism("MSA", "OC")
    new = node.organism("MSA", "OC")  # a second key, published before it is used
    for signer in (old, new):
        with Client(node.address, credentials=node.credentials(signer)) as client:
            assert client.validate_siret("55210055400013").message
    issued_before = anonymous.issue_organism_token(old, audience=[REGISTRY])
    # Retired a second ago: a key signs until its retirement second, inclusive.
    DirectoryStore(node.node.engine).retire_key(old.key_id, at=int(time.time()) - 1)
    time.sleep(0.3)  # the node follows the directory every poll interval (0.05 s in tests)
    with pytest.raises(Unauthenticated) as refused:
        anonymous.issue_organism_token(old, audience=[REGISTRY])
    assert refused.value.reason == "KEY_NOT_VALID"
    # A chain is held by the key that signed its sign-in: a retired key proves nothing any more
    # and another key of the organism is not its holder; a new sign-in with the new key works.
    assert _refused(node, ChainCredentials(issued_before.token, old), Unauthenticated) == (
        "KEY_NOT_VALID"
    )
    assert _refused(node, ChainCredentials(issued_before.token, new), Unauthenticated) == (
        "BAD_PROOF"
    )
    issued_after = anonymous.issue_organism_token(new, audience=[REGISTRY])
    with Client(node.address, credentials=ChainCredentials(issued_after.token, new)) as client:
        assert client.validate_siret("55210055400013").message


def test_a_failure_inside_authentication_is_internal_with_no_internals(tmp_path: Path) -> None:
    running = RunningNode(f"sqlite:///{tmp_path / 'auth.db'}", tmp_path)
    try:
        DeclarantStore(running.node.engine).create("44306184100047", "Nav", "Igator", "pw",
                                                   [("registry.read", "443061841")])  # fmt: skip
        navigation = running.sign_in("44306184100047", "Nav", "Igator", "pw",
                                     profile=t.PROFILE_NAVIGATION, audience=[REGISTRY])  # fmt: skip
        with running.node.engine.begin() as connection:
            connection.execute(text("DROP TABLE spent_tokens"))
        with (
            Client(running.address, credentials=navigation) as client,
            pytest.raises(Internal) as caught,
        ):
            client.validate_siret("55210055400013")
        assert caught.value.reason == "INTERNAL" and "trace id" in caught.value.message
        assert "spent_tokens" not in caught.value.message
    finally:
        running.stop()
