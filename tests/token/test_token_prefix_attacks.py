"""Issue 17's attacks at library level: a prefix of a chain is of no use to anyone but the
holder its last block names; and revocation offline (subject cutoffs, fail closed, rollback)."""

from __future__ import annotations

import pytest
from interops.token.v1 import token_pb2 as t

from tests.token.token_world import NOW, READ, World, holder_of, portal_root, session, signer
from token_suite.chain import Signer, Terms, delegate, grant, issue_root, sign_proof
from token_suite.errors import TokenError
from token_suite.replay import MemoryReplayCache
from token_suite.revocations import (
    RevocationCache,
    Revocations,
    open_revocations,
    sign_revocations,
)
from token_suite.wire import VERSION, encode

WORLD = World()
ROOT = signer("ROOT")
ROOTS = {ROOT.key_id: ROOT.key.public_key()}
GET = "/interops.habilitation.v1.HabilitationService/Check"
SERVICE = "interops.habilitation.v1.HabilitationService"


def _prefix(token: bytes, blocks: int) -> bytes:
    chain = t.TokenChain()
    chain.ParseFromString(token)
    return encode(t.TokenChain(version=VERSION, blocks=chain.blocks[:blocks]))


def _use(token: bytes, by: Signer | None) -> str:
    """The verdict of one call with `token`, proved by `by` (None: no proof)."""
    proof = sign_proof(by, GET, SERVICE, token, NOW) if by else None
    try:
        WORLD.verifier().verify_call(token, proof, method=GET, audience=SERVICE,
                                     replays=MemoryReplayCache())  # fmt: skip
    except TokenError as error:
        return error.reason
    return "VALID"


def _navigation() -> bytes:
    """The MAG sign-in's hand-back: the person's session chain (held by the session key), then
    a 60 s NAVIGATION hop signed by the portal to the partner site's directory key."""
    portal = portal_root(holder="PORTAL", audience=(SERVICE, "SITE"))
    terms = Terms(holder=holder_of("SITE"), profile=t.PROFILE_NAVIGATION, audience=("SITE",),
                  grants=grant(READ, sirens=("123456782",)), lifetime=60)  # fmt: skip
    return delegate(portal, signer("PORTAL"), terms, NOW)


def test_a_partner_that_cuts_its_navigation_chain_back_to_the_portal_chain_gets_nothing() -> None:
    portal_chain = _prefix(_navigation(), 1)
    assert WORLD.verifier().verify(portal_chain).holder.public_key  # the signatures still hold
    assert _use(portal_chain, None) == "PROOF_REQUIRED"
    assert _use(portal_chain, signer("SITE")) == "BAD_PROOF"
    assert _use(portal_chain, signer("PORTAL")) == "BAD_PROOF"  # not even the portal's key
    # A proof naming the session key's id but signed by the partner does not verify either.
    forged = Signer("PORTAL", session().key_id, signer("SITE").key)
    assert _use(portal_chain, forged) == "BAD_PROOF"
    assert _use(portal_chain, session()) == "VALID"  # only the portal's session key works
    # Nor can the partner sign the next hop itself: only the portal's directory keys may.
    own = delegate(portal_chain, signer("SITE"), Terms(holder=holder_of("SITE")), NOW)
    with pytest.raises(TokenError, match="WRONG_SIGNER"):
        WORLD.verifier().verify(own)


def test_an_organism_that_cuts_its_delegated_chain_back_gets_nothing() -> None:
    terms = Terms(holder=holder_of("URSSAF"), profile=t.PROFILE_APPLICATION,
                  audience=(SERVICE,), grants=grant("registry.read"), max_hops=2)  # fmt: skip
    root = issue_root(signer("PORTAL"), "organism:URSSAF", terms, NOW)
    narrowed = Terms(holder=holder_of("CNAV"), grants=grant("registry.read",
                     sirets=("12345678200017",)))  # fmt: skip
    delegated = delegate(root, signer("URSSAF"), narrowed, NOW)
    assert _use(delegated, signer("CNAV")) == "VALID"
    cut = _prefix(delegated, 1)
    assert _use(cut, signer("CNAV")) == "BAD_PROOF"
    assert _use(cut, None) == "PROOF_REQUIRED"


def test_a_portal_chain_handed_to_a_partner_is_refused_as_not_its_own() -> None:
    portal_chain = _prefix(_navigation(), 1)
    with pytest.raises(TokenError, match="WRONG_HOLDER"):
        WORLD.verifier().accept(portal_chain, "SITE")
    assert WORLD.verifier().accept(_navigation(), "SITE").holder == holder_of("SITE")


def test_a_hand_back_to_another_site_is_refused() -> None:
    with pytest.raises(TokenError, match="WRONG_AUDIENCE"):
        WORLD.verifier().accept(_navigation(), "OTHER")


def _signed_list(sequence: int, expires: int, **content: object) -> bytes:
    view = Revocations(sequence, expires, 1, **content)  # type: ignore[arg-type]
    return sign_revocations(ROOT, view.to_list(NOW, expires))


def test_a_subject_cutoff_refuses_every_older_block_of_that_subject() -> None:
    older = portal_root(now=NOW - 100)
    newer = portal_root(now=NOW)
    other = issue_root(signer("PORTAL"), "declarant:43", Terms(
        holder=holder_of("URSSAF"), profile=t.PROFILE_PORTAL, audience=("svc.a",),
    ), NOW - 100)  # fmt: skip
    view = open_revocations(_signed_list(3, NOW + 90, cutoffs={"declarant:42": NOW - 50}),
                            ROOTS, NOW)  # fmt: skip
    verifier = WORLD.verifier(revocations=lambda: view)
    with pytest.raises(TokenError) as refused:
        verifier.verify(older)
    assert (refused.value.reason, refused.value.block) == ("REVOKED", 0)
    assert verifier.verify(newer).subject == "declarant:42"
    assert verifier.verify(other).subject == "declarant:43"


def test_a_cache_that_cannot_refresh_past_expiry_fails_closed() -> None:
    moment = [float(NOW)]
    lists = [_signed_list(1, NOW + 90)]

    def fetch() -> bytes:
        if not lists:
            raise ConnectionError("the backbone is unreachable")
        return lists.pop()

    cache = RevocationCache(fetch, ROOTS, refresh_seconds=30, clock=lambda: moment[0])
    verifier = WORLD.verifier(revocations=cache.current)
    assert verifier.verify(portal_root(), now=NOW).subject == "declarant:42"
    moment[0] = NOW + 60  # refresh fails: the held list is still in force
    assert cache.current().sequence == 1
    moment[0] = NOW + 91  # expired, and still no new list
    with pytest.raises(TokenError, match="REVOCATIONS_STALE"):
        verifier.verify(portal_root(), now=NOW)


def test_a_revocation_is_seen_within_the_refresh_interval_and_a_rollback_is_refused() -> None:
    token = portal_root()
    revocation_id = WORLD.verifier().verify(token).hops[0].revocation_id
    served = [_signed_list(1, NOW + 90)]
    moment = [float(NOW)]
    changes: list[int] = []
    cache = RevocationCache(
        lambda: served[-1], ROOTS, refresh_seconds=10, clock=lambda: moment[0],
        on_directory_change=lambda: changes.append(1),
    )  # fmt: skip
    verifier = WORLD.verifier(revocations=cache.current)
    verifier.verify(token)
    served.append(sign_revocations(ROOT, Revocations(2, NOW + 90, 2, frozenset(
        {revocation_id})).to_list(NOW, NOW + 90)))  # fmt: skip
    moment[0] = NOW + 10
    with pytest.raises(TokenError, match="REVOKED"):
        verifier.verify(token, now=NOW)
    assert changes == [1]  # the list named a new directory serial
    served.append(_signed_list(1, NOW + 200))  # an older list replayed
    moment[0] = NOW + 20
    assert cache.current().sequence == 2
    with pytest.raises(TokenError, match="REVOKED"):
        verifier.verify(token, now=NOW)
    # The same sequence signed earlier, without the revocation (two replicas' views, or a
    # mirror replaying an older signature): the later list stays.
    served.append(sign_revocations(ROOT, Revocations(2, NOW + 90, 2).to_list(NOW - 5, NOW + 90)))
    moment[0] = NOW + 30
    assert cache.current().issued_at == NOW
    with pytest.raises(TokenError, match="REVOKED"):
        verifier.verify(token, now=NOW)


def test_the_refresh_interval_is_at_most_a_minute() -> None:
    with pytest.raises(ValueError, match="refresh_seconds"):
        RevocationCache(lambda: b"", ROOTS, refresh_seconds=61)


def test_a_revocation_list_signed_by_another_key_or_altered_is_refused() -> None:
    good = _signed_list(1, NOW + 90)
    with pytest.raises(TokenError, match="UNTRUSTED_ROOT"):
        open_revocations(good, {"other": ROOT.key.public_key()}, NOW)
    envelope = t.SignedRevocations()
    envelope.ParseFromString(good)
    envelope.payload += b"\x28\x01"  # another field appended after signing
    with pytest.raises(TokenError, match="BAD_SIGNATURE"):
        open_revocations(encode(envelope), ROOTS, NOW)
