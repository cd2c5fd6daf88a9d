"""Revocation on a real node, and possession at every use: a strike-off, a company's removal of
a habilitation, the end of a firm's mandate and a sign-out end the live chains concerned at once
on the node and, after one refresh, at an offline verifier that follows the signed revocation
list; the list verifies with the root key and is refused once stale; DelegateToken and
VerifyToken need the last holder's proof, so that a partner that cuts its navigation chain back
to the portal chain inside holds nothing it can use."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from interops.habilitation.v1 import habilitation_pb2 as pb
from interops.token.v1 import token_pb2 as t

from clients.client import Client
from clients.errors import PermissionDenied, Unauthenticated
from clients.token_credentials import ChainCredentials
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.trust.revocation_store import RevocationStore
from tests.habilitation.firms import firm_with_clients
from tests.registry_rows import in_registry
from tests.running_node import RunningNode
from token_suite.chain import Signer, session_signer
from token_suite.directory import DirectoryCache
from token_suite.errors import TokenError
from token_suite.keys import key_id_of, public_bytes, read_private_key
from token_suite.revocations import RevocationCache, open_revocations
from token_suite.verify import Verifier
from token_suite.wire import encode, parse_canonical

HABILITATION = "interops.habilitation.v1.HabilitationService"
REGISTRY = "interops.registry.v1.RegistryService"
FIRM, CLIENT = siren_at(90), siren_at(91)
PASSWORD = "long password"


@dataclass
class Company:
    """A firm whose administrator manages its declarants and a CLIENTS portfolio."""

    node: RunningNode
    admin: Client

    def declarant(self, last_name: str, *habilitated: tuple[str, str]) -> int:
        """A new declarant of the firm, habilitated (siret, service) for each pair."""
        identity = pb.Identity(siret=siret_of(FIRM, 1), last_name=last_name, first_name="Alex",
                               password=PASSWORD)  # fmt: skip
        calls = self.admin.habilitations
        account = int(
            calls.CreateDeclarant(pb.CreateDeclarantRequest(identity=identity)).account_id
        )
        for siret, service in habilitated:
            calls.GrantHabilitation(pb.GrantHabilitationRequest(habilitation=pb.Habilitation(
                account_id=account, siret=siret, service=service)))  # fmt: skip
        return account

    def sign_in(self, last_name: str, *partners: str) -> ChainCredentials:
        """A live PORTAL chain of the declarant (for these partner sites too), held by a
        session key."""
        return self.node.sign_in(siret_of(FIRM, 1), last_name, "Alex", PASSWORD,
                                 audience=[HABILITATION, REGISTRY, *partners],
                                 max_hops=1)  # fmt: skip


@pytest.fixture(scope="module")
def company(node: RunningNode) -> Iterator[Company]:
    in_registry(node.node.engine, [siret_of(s, n) for s in (FIRM, CLIENT) for n in (1, 2)])
    firm_with_clients(node.node.engine, siret_of(FIRM, 1), ("Moreau", "Lina"), PASSWORD,
                      [siret_of(CLIENT, 1), siret_of(CLIENT, 2)])  # fmt: skip
    chain = node.sign_in(siret_of(FIRM, 1), "Moreau", "Lina", PASSWORD, audience=[HABILITATION])
    with Client(node.address, credentials=chain, timeout=30) as admin:
        admin.habilitations.CreatePortfolio(pb.CreatePortfolioRequest(name="Clients"))
        admin.habilitations.UpdatePortfolio(pb.UpdatePortfolioRequest(
            name="Clients", add_sirets=[siret_of(CLIENT, 1), siret_of(CLIENT, 2)],
            add_services=["ATMP", "DUCS"]))  # fmt: skip
        yield Company(node, admin)


@pytest.fixture
def anonymous(node: RunningNode) -> Iterator[Client]:
    with Client(node.address, timeout=30) as plain:
        yield plain


def _root_keys(node: RunningNode) -> dict[str, Ed25519PublicKey]:
    root = read_private_key(node.settings.data_dir / "keys" / "root.pem").public_key()
    return {key_id_of(public_bytes(root)): root}


class OfflineVerifier:
    """A partner's verifier: the signed directory and the signed revocation list, fetched from
    the node and checked with the pinned root key, on a clock the test moves."""

    def __init__(self, node: RunningNode, anonymous: Client) -> None:
        self.now = time.time()
        roots = _root_keys(node)
        directory = DirectoryCache(lambda: anonymous.get_directory().SerializeToString(), roots,
                                   refetch_seconds=0)  # fmt: skip
        # Replaced by a test to make the node unreachable.
        self.fetch: Callable[[], bytes] = lambda: anonymous.get_revocations().SerializeToString()
        self.revocations = RevocationCache(self._fetch, roots, refresh_seconds=5,
                                           clock=lambda: self.now)  # fmt: skip
        self.verifier = Verifier(directory, revocations=self.revocations.current,
                                 clock=lambda: self.now)  # fmt: skip

    def _fetch(self) -> bytes:
        return self.fetch()

    def verdict(self, token: bytes) -> str:
        """VALID or the reason the chain is refused."""
        try:
            self.verifier.verify(token, HABILITATION)
        except TokenError as error:
            return str(error.reason)
        return "VALID"

    def refresh(self) -> None:
        """Lets the refresh interval pass."""
        self.now += 5


def _node_verdict(anonymous: Client, chain: ChainCredentials) -> str:
    """The node's verdict on the chain, proven by its holder."""
    try:
        anonymous.verify_token(chain.token, HABILITATION, chain.holder)
    except Unauthenticated as refused:
        return str(refused.reason)
    return "VALID"


def _after_trigger(
    node: RunningNode,
    anonymous: Client,
    chains: list[ChainCredentials],
    trigger: Callable[[], None],
) -> tuple[list[str], list[str], list[str]]:
    """The offline verdicts before the trigger; then the node's at once and the offline ones
    after one refresh of the revocation list."""
    offline = OfflineVerifier(node, anonymous)
    before = [offline.verdict(chain.token) for chain in chains]
    trigger()
    at_once = [_node_verdict(anonymous, chain) for chain in chains]
    stale_copy = [offline.verdict(chain.token) for chain in chains]
    assert stale_copy == before  # within the refresh interval the old list holds
    offline.refresh()
    return before, at_once, [offline.verdict(chain.token) for chain in chains]


def test_a_strike_off_ends_the_declarants_chains_everywhere(
    node: RunningNode, anonymous: Client, company: Company
) -> None:
    leaving = company.declarant("Dupont")
    company.declarant("Durand")
    chains = [company.sign_in("Dupont"), company.sign_in("Durand")]

    def strike_off() -> None:
        company.admin.habilitations.StrikeOff(pb.StrikeOffRequest(account_id=leaving))

    before, at_once, offline = _after_trigger(node, anonymous, chains, strike_off)
    assert before == ["VALID", "VALID"]
    assert at_once == ["REVOKED", "VALID"]
    assert offline == ["REVOKED", "VALID"]


def test_a_removed_habilitation_ends_the_chains_that_carried_it(
    node: RunningNode, anonymous: Client, company: Company
) -> None:
    habilitation = pb.Habilitation(siret=siret_of(CLIENT, 1), service="ATMP")
    habilitation.account_id = company.declarant("Petit", (habilitation.siret, "ATMP"))
    chains = [company.sign_in("Petit")]

    def remove() -> None:
        request = pb.RevokeHabilitationRequest(habilitation=habilitation)
        assert company.admin.habilitations.RevokeHabilitation(request).changed

    assert _after_trigger(node, anonymous, chains, remove) == (["VALID"], ["REVOKED"], ["REVOKED"])
    again = company.sign_in("Petit")  # at once: the node issues it after the cutoff's second
    assert _node_verdict(anonymous, again) == "VALID"
    assert not any(g.right == "service.atmp" for g in _grants(anonymous, again))


def _grants(anonymous: Client, chain: ChainCredentials) -> list[t.Grant]:
    return list(anonymous.verify_token(chain.token, HABILITATION, chain.holder).grants)


def test_the_end_of_a_mandate_ends_the_chains_of_the_declarants_habilitated_through_it(
    node: RunningNode, anonymous: Client, company: Company
) -> None:
    company.declarant("Lambert", (siret_of(CLIENT, 2), "DUCS"))
    company.declarant("Girard", (siret_of(CLIENT, 1), "DUCS"))
    chains = [company.sign_in("Lambert"), company.sign_in("Girard")]

    def end_mandate() -> None:
        company.admin.habilitations.UpdatePortfolio(
            pb.UpdatePortfolioRequest(name="Clients", remove_sirets=[siret_of(CLIENT, 2)])
        )

    before, at_once, offline = _after_trigger(node, anonymous, chains, end_mandate)
    assert before == ["VALID", "VALID"]
    assert at_once == offline == ["REVOKED", "VALID"]


def test_a_sign_out_revokes_the_root_with_the_session_proof(
    node: RunningNode, anonymous: Client, company: Company
) -> None:
    company.declarant("Faure")
    chains = [company.sign_in("Faure"), company.sign_in("Faure")]
    with pytest.raises(PermissionDenied) as stranger:
        anonymous.revoke_token(chains[0].token, 0, session_signer("NET-ENTREPRISES"))
    assert stranger.value.reason == "BAD_PROOF"

    def sign_out() -> None:
        assert chains[0].holder is not None
        anonymous.revoke_token(chains[0].token, 0, chains[0].holder)

    before, at_once, offline = _after_trigger(node, anonymous, chains, sign_out)
    assert before == ["VALID", "VALID"]
    assert at_once == offline == ["REVOKED", "VALID"]  # another session of the same person


def test_the_revocation_list_is_signed_by_the_root_key_and_refused_when_stale(
    node: RunningNode, anonymous: Client, company: Company
) -> None:
    roots = _root_keys(node)
    first = anonymous.get_revocations().SerializeToString()
    opened = open_revocations(first, roots, time.time())
    assert opened.expires - time.time() == pytest.approx(90, abs=2)
    with pytest.raises(TokenError) as untrusted:
        open_revocations(first, {"ed25519:other": next(iter(roots.values()))}, time.time())
    assert untrusted.value.reason == "UNTRUSTED_ROOT"
    with pytest.raises(TokenError) as stale:
        open_revocations(first, roots, time.time() + 91)
    assert stale.value.reason == "REVOCATIONS_STALE"
    account = company.declarant("Renard")
    company.admin.habilitations.StrikeOff(pb.StrikeOffRequest(account_id=account))
    later = open_revocations(anonymous.get_revocations().SerializeToString(), roots, time.time())
    assert later.sequence > opened.sequence
    assert f"declarant:{account}" in later.cutoffs
    # An offline verifier whose list expired and cannot fetch another refuses every chain.
    company.declarant("Roy")
    chain = company.sign_in("Roy")
    offline = OfflineVerifier(node, anonymous)
    assert offline.verdict(chain.token) == "VALID"

    def unreachable() -> bytes:
        raise OSError("the node is unreachable")

    offline.fetch = unreachable
    offline.now += 91
    assert offline.verdict(chain.token) == "REVOCATIONS_STALE"


def _cut(token: bytes, blocks: int) -> bytes:
    """The chain's first blocks: what whoever received the chain can always make of it."""
    chain = parse_canonical(t.TokenChain(), token, "the token")
    del chain.blocks[blocks:]
    return encode(chain)


def test_only_the_last_holder_delegates_or_verifies(anonymous: Client, company: Company) -> None:
    company.declarant("Blanc")
    chain = company.sign_in("Blanc")
    other_session = session_signer("NET-ENTREPRISES")
    for call in (
        lambda prover: anonymous.verify_token(chain.token, HABILITATION, prover),
        lambda prover: anonymous.delegate_token(chain.token, prover, holder=t.Party(
            organism="NET-ENTREPRISES", public_key=public_bytes(other_session.key))),
    ):  # fmt: skip
        with pytest.raises(Unauthenticated) as missing:
            call(None)
        assert missing.value.reason == "PROOF_REQUIRED"
        with pytest.raises(Unauthenticated) as stranger:
            call(other_session)
        assert stranger.value.reason == "BAD_PROOF"


def test_a_partner_that_cuts_its_navigation_chain_holds_nothing(
    node: RunningNode, anonymous: Client, company: Company
) -> None:
    site: Signer = node.organism("SITE-PAIE", "PARTNER_SITE", rights=())
    company.declarant("Noir")
    portal = company.sign_in("Noir", site.organism)
    hand_back = anonymous.delegate_token(
        portal.token, portal.holder, holder=t.Party(organism=site.organism, key_id=site.key_id),
        profile=t.PROFILE_NAVIGATION, audience=[site.organism], lifetime_seconds=60,
        grants=[t.Grant(right="habilitation.check", sirens=[FIRM])],
    ).token  # fmt: skip
    cut = _cut(hand_back, 1)
    assert cut == portal.token  # the portal chain, all of the person's rights, for an hour
    for credentials, reason in (
        (ChainCredentials(cut), "PROOF_REQUIRED"),
        (ChainCredentials(cut, site), "BAD_PROOF"),
    ):
        with (
            Client(node.address, credentials=credentials) as partner,
            pytest.raises(Unauthenticated) as refused,
        ):
            partner.validate_siret(siret_of(FIRM, 1))
        assert refused.value.reason == reason
    to_itself = t.Party(organism=site.organism, key_id=site.key_id)
    for prover, reason in ((None, "PROOF_REQUIRED"), (site, "BAD_PROOF")):
        with pytest.raises(Unauthenticated) as refused_hop:
            anonymous.delegate_token(cut, prover, holder=to_itself, profile=t.PROFILE_APPLICATION)
        assert refused_hop.value.reason == reason
    # What the partner was given works for it alone, once.
    principal = anonymous.verify_token(hand_back, site.organism, site)
    assert [h.holder.key_id for h in principal.hops][-1] == site.key_id
    with pytest.raises(Unauthenticated) as spent:
        anonymous.verify_token(hand_back, site.organism, site)
    assert spent.value.reason == "REPLAYED"


def test_revocations_are_pruned_when_they_revoke_nothing_but_the_sequence_stays(
    node: RunningNode, anonymous: Client
) -> None:
    store = RevocationStore(node.node.engine)
    now = time.time()
    store.revoke(b"\x01" * 32, expires=int(now) + 60, now=now)
    store.cut_off(["declarant:999999"], now=now)
    _, last = store.after(0)
    far = now + 7 * 86400
    assert store.prune(far) > 0
    kept, position = store.after(0)
    assert [revocation.position for revocation in kept] == [last] and position == last
    time.sleep(0.3)  # the node follows the store every poll interval (0.05 s in tests)
    sequence = open_revocations(
        anonymous.get_revocations().SerializeToString(), _root_keys(node), time.time()
    ).sequence
    assert sequence == last  # a replica started now publishes the same sequence
