"""Attacks on token chains, each class its own test, against the pure library."""

from __future__ import annotations

from dataclasses import replace

import pytest
from interops.token.v1 import token_pb2 as t

from tests.token.token_world import (
    NOW,
    READ,
    World,
    five_hops,
    holder_of,
    hop,
    portal_root,
    public_key,
    signer,
)
from token_suite.chain import Signer, Terms, delegate, grant, issue_root, sign_proof
from token_suite.errors import TokenError
from token_suite.replay import MemoryReplayCache
from token_suite.revocations import Revocations
from token_suite.verify import Verifier
from token_suite.wire import VERSION, block_input, encode

WORLD = World()


def verdict(token: bytes, **options: object) -> str:
    """ "VALID" or the reason the world's verifier refuses the token."""
    try:
        WORLD.verifier(**options).verify(token)
    except TokenError as error:
        return error.reason
    return "VALID"


def parsed(token: bytes) -> t.TokenChain:
    chain = t.TokenChain()
    chain.ParseFromString(token)
    return chain


def block_of(chain: t.TokenChain, index: int) -> t.Block:
    block = t.Block()
    block.ParseFromString(chain.blocks[index].payload)
    return block


def resign(chain: t.TokenChain, index: int, block: t.Block, by: Signer) -> bytes:
    """Replaces block `index` with `block`, signed properly by `by` over the real prefix."""
    payload = encode(block)
    previous = chain.blocks[index - 1].signature if index else b""
    signed = chain.blocks[index]
    signed.payload, signed.key_id = payload, by.key_id
    signed.signature = by.key.sign(block_input(index, by.key_id, payload, previous))
    return encode(chain)


def test_a_valid_two_hop_chain_verifies() -> None:
    assert verdict(hop(portal_root(), "URSSAF", "CNAV")) == "VALID"


def test_every_byte_of_payload_or_signature_tampered_is_refused() -> None:
    token = hop(portal_root(), "URSSAF", "CNAV")
    chain = parsed(token)
    for index in range(2):
        for field in ("payload", "signature"):
            original = getattr(chain.blocks[index], field)
            for position in range(len(original)):
                tampered = parsed(token)
                value = bytearray(original)
                value[position] ^= 0x01
                setattr(tampered.blocks[index], field, bytes(value))
                assert verdict(encode(tampered)) != "VALID", (index, field, position)


def _three_blocks() -> tuple[bytes, t.TokenChain]:
    token = hop(hop(portal_root(), "URSSAF", "CNAV"), "CNAV", "SITE")
    return token, parsed(token)


def test_swapped_blocks_are_refused() -> None:
    token, chain = _three_blocks()
    swapped = parsed(token)
    swapped.blocks[1].CopyFrom(chain.blocks[2])
    swapped.blocks[2].CopyFrom(chain.blocks[1])
    assert verdict(encode(swapped)) == "WRONG_SIGNER"


def test_a_duplicated_block_is_refused() -> None:
    token, chain = _three_blocks()
    duplicated = parsed(token)
    duplicated.blocks.add().CopyFrom(chain.blocks[2])
    assert verdict(encode(duplicated)) == "WRONG_SIGNER"


def test_a_renumbered_block_is_refused() -> None:
    # Block 2 presented as block 1, its predecessor dropped: the signature covers the index and
    # the previous signature.
    _, chain = _three_blocks()
    renumbered = t.TokenChain(version=VERSION, blocks=[chain.blocks[0], chain.blocks[2]])
    assert verdict(encode(renumbered)) in {"WRONG_SIGNER", "BAD_SIGNATURE"}
    # Even when the dropped hop's holder signed the next one (same organism twice).
    same = hop(hop(portal_root(), "URSSAF", "URSSAF"), "URSSAF", "CNAV")
    blocks = parsed(same).blocks
    assert verdict(encode(t.TokenChain(version=VERSION, blocks=[blocks[0], blocks[2]]))) == (
        "BAD_SIGNATURE"
    )


def test_a_prefix_is_refused_without_its_holders_key() -> None:
    token = hop(portal_root(), "URSSAF", "CNAV")
    truncated = encode(t.TokenChain(version=VERSION, blocks=[parsed(token).blocks[0]]))
    # The prefix's signatures still verify, but its last holder is URSSAF's key: CNAV, who cut
    # its own block off, can prove only its own key, and without a proof nothing is usable.
    assert WORLD.verifier().verify(truncated).holder == holder_of("URSSAF")
    call = {"method": "/svc.a/Get", "audience": "svc.a", "replays": MemoryReplayCache()}
    with pytest.raises(TokenError, match="PROOF_REQUIRED"):
        WORLD.verifier().verify_call(truncated, None, **call)  # type: ignore[arg-type]
    by_cnav = sign_proof(signer("CNAV"), "/svc.a/Get", "svc.a", truncated, NOW)
    with pytest.raises(TokenError, match="BAD_PROOF"):
        WORLD.verifier().verify_call(truncated, by_cnav, **call)  # type: ignore[arg-type]
    by_urssaf = sign_proof(signer("URSSAF"), "/svc.a/Get", "svc.a", truncated, NOW)
    assert WORLD.verifier().verify_call(truncated, by_urssaf, **call).hops[-1].position == 0  # type: ignore[arg-type]


def test_a_block_spliced_from_another_chain_by_the_same_key_is_refused() -> None:
    first = hop(portal_root(), "URSSAF", "CNAV")
    other = hop(portal_root(sirens=("123456782",)), "URSSAF", "CNAV")
    spliced = t.TokenChain(
        version=VERSION, blocks=[parsed(first).blocks[0], parsed(other).blocks[1]]
    )
    assert verdict(encode(spliced)) == "BAD_SIGNATURE"


def test_a_root_signed_by_an_organism_that_is_no_identity_provider_is_refused() -> None:
    terms = Terms(holder=holder_of("CNAV"), profile=t.PROFILE_PORTAL, audience=("svc.a",),
                  grants=grant(READ))  # fmt: skip
    token = issue_root(signer("URSSAF"), "declarant:42", terms, NOW)
    assert verdict(token) == "UNTRUSTED_ROOT"


def test_a_root_signed_by_a_key_not_in_the_directory_is_refused() -> None:
    rogue = signer("PORTAL", generation=99)
    token = issue_root(rogue, "declarant:42", Terms(holder=holder_of("URSSAF"),
                       profile=t.PROFILE_PORTAL, audience=("svc.a",)), NOW)  # fmt: skip
    assert verdict(token) == "UNKNOWN_KEY"


def test_a_hop_signed_with_another_organisms_key_is_refused() -> None:
    # CNAV signs a hop that URSSAF, the holder, should have signed; CNAV's own key is listed.
    token = hop(portal_root(holder="URSSAF"), "CNAV", "SITE")
    assert verdict(token) == "WRONG_SIGNER"


def test_a_key_claimed_by_the_wrong_organism_is_refused() -> None:
    # URSSAF's key used while the block claims CNAV as delegator.
    token = hop(portal_root(holder="URSSAF"), "URSSAF", "CNAV")
    chain = parsed(token)
    block = block_of(chain, 1)
    block.delegator.organism = "CNAV"
    assert verdict(resign(chain, 1, block, signer("URSSAF"))) == "WRONG_SIGNER"


def test_a_holder_named_with_one_key_refuses_the_organisms_other_key() -> None:
    second = signer("URSSAF", generation=2)
    world = World(extra_keys=[public_key(second)])
    root = issue_root(signer("PORTAL"), "declarant:42", Terms(
        holder=holder_of("URSSAF"), profile=t.PROFILE_PORTAL,
        audience=("svc.a",), max_hops=2), NOW)  # fmt: skip
    token = hop(root, "URSSAF", "CNAV")
    world.verifier().verify(token)
    other = delegate(root, second, Terms(holder=holder_of("CNAV")), NOW)
    with pytest.raises(TokenError) as refused:
        world.verifier().verify(other)
    assert refused.value.reason == "WRONG_SIGNER"


@pytest.mark.parametrize(
    "public",
    [
        bytes(32),  # 0, order 4
        bytes([1]) + bytes(31),  # the identity point
        bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
        bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
        bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        bytes([1]) + bytes(30) + bytes([0x80]),  # the identity with the sign bit set
        bytes.fromhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # p+1
        bytes(31),  # too short
        bytes(33),  # too long
    ],
)
def test_small_order_and_malformed_keys_never_enter_a_directory(public: bytes) -> None:
    bad = t.PublicKey(key_id="bad", organism="PORTAL", public_key=public, valid_from=1)
    with pytest.raises(TokenError) as refused:
        World(extra_keys=[bad]).directory()
    assert refused.value.reason == "BAD_KEY"


def test_the_identity_key_would_accept_a_forged_root_without_the_check() -> None:
    """Why the check exists: OpenSSL accepts R = identity, S = 0 under the identity key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    identity = Ed25519PublicKey.from_public_bytes(bytes([1]) + bytes(31))
    identity.verify(bytes([1]) + bytes(63), b"any message at all")  # does not raise


def test_a_hop_signed_by_someone_other_than_the_named_holder_is_refused() -> None:
    token = hop(portal_root(holder="CNAV"), "URSSAF", "SITE")
    assert verdict(token) == "WRONG_SIGNER"


def test_a_proof_signature_reused_as_a_block_signature_is_refused() -> None:
    token = portal_root()
    chain = parsed(token)
    proof = t.CallProof()
    proof.ParseFromString(sign_proof(signer("PORTAL"), "/m", "svc.a", token, NOW))
    chain.blocks[0].signature = proof.signature
    assert verdict(encode(chain)) == "BAD_SIGNATURE"


def test_an_expired_middle_block_is_refused() -> None:
    root = portal_root(now=NOW - 3000)  # valid until NOW + 600
    middle = hop(root, "URSSAF", "CNAV", now=NOW - 400, profile=t.PROFILE_APPLICATION)
    last = hop(middle, "CNAV", "SITE", now=NOW - 130, profile=t.PROFILE_NAVIGATION)
    assert WORLD.verifier().verify(last, now=NOW - 120).subject == "declarant:42"
    # Even with a last block re-signed to outlive its parent, the expired middle is reported.
    chain = parsed(last)
    block = block_of(chain, 2)
    block.expires = NOW + 10
    block.not_before = NOW - 20
    outliving = resign(chain, 2, block, signer("CNAV"))
    for token in (last, outliving):
        with pytest.raises(TokenError) as refused:
            WORLD.verifier().verify(token, now=NOW)
        assert (refused.value.reason, refused.value.block) == ("EXPIRED", 1)


def test_not_before_in_the_future_is_refused_beyond_the_leeway() -> None:
    assert verdict(portal_root(now=NOW + 29)) == "VALID"
    assert verdict(portal_root(now=NOW + 31)) == "NOT_YET_VALID"


def test_expiry_is_accepted_up_to_the_leeway_and_not_a_second_more() -> None:
    token = portal_root(now=NOW - 3600)  # expires at NOW exactly
    verifier = WORLD.verifier()
    assert verifier.verify(token, now=NOW + 30).subject == "declarant:42"
    with pytest.raises(TokenError, match="EXPIRED"):
        verifier.verify(token, now=NOW + 31)
    assert WORLD.verifier(leeway=0).verify(token, now=NOW).expires == NOW
    with pytest.raises(TokenError, match="EXPIRED"):
        WORLD.verifier(leeway=0).verify(token, now=NOW + 1)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: b.grants.add(right="registry.import", all_establishments=True),
         "GRANTS_WIDENED"),
        (lambda b: b.grants[0].sirens.append("999999990"), "GRANTS_WIDENED"),
        (lambda b: setattr(b.grants[0], "all_establishments", True), "GRANTS_WIDENED"),
        (lambda b: b.audience.append("svc.z"), "AUDIENCE_WIDENED"),
        (lambda b: setattr(b, "expires", b.expires + 1), "EXPIRY_EXTENDED"),
        (lambda b: setattr(b, "max_hops", 5), "HOPS_NOT_DECREASING"),
        (lambda b: setattr(b, "subject", "declarant:43"), "SUBJECT_CHANGED"),
        (lambda b: setattr(b, "chain_id", bytes(16)), "CHAIN_ID_CHANGED"),
    ],
)  # fmt: skip
def test_every_way_of_widening_a_hop_is_refused(change: object, reason: str) -> None:
    root = portal_root(now=NOW - 3500)  # expires at NOW + 100
    # The hop's expiry is capped at its parent's.
    token = hop(root, "URSSAF", "CNAV", now=NOW - 10, profile=t.PROFILE_APPLICATION)
    chain = parsed(token)
    block = block_of(chain, 1)
    change(block)  # type: ignore[operator]
    assert verdict(resign(chain, 1, block, signer("URSSAF"))) == reason


def test_a_chain_may_not_move_back_to_a_longer_lived_profile() -> None:
    token = hop(portal_root(), "URSSAF", "CNAV", profile=t.PROFILE_APPLICATION)
    assert verdict(hop(token, "CNAV", "SITE", profile=t.PROFILE_NAVIGATION)) == "VALID"
    assert verdict(hop(token, "CNAV", "SITE", profile=t.PROFILE_PORTAL)) == "PROFILE_WIDENED"


def test_a_block_past_its_profiles_lifetime_is_refused() -> None:
    token = hop(portal_root(), "URSSAF", "CNAV", profile=t.PROFILE_NAVIGATION)
    chain = parsed(token)
    block = block_of(chain, 1)
    block.expires = block.not_before + 61
    assert verdict(resign(chain, 1, block, signer("URSSAF"))) == "LIFETIME_TOO_LONG"


def test_no_hop_may_follow_a_block_that_allows_none() -> None:
    token = hop(portal_root(max_hops=1), "URSSAF", "CNAV")
    chain = parsed(token)
    block = block_of(chain, 1)
    assert block.max_hops == 0
    assert verdict(hop(token, "CNAV", "SITE", max_hops=0)) == "TOO_MANY_HOPS"


def test_an_oversize_token_is_refused() -> None:
    token = portal_root()
    assert verdict(token, max_bytes=len(token) - 1) == "TOO_LARGE"
    assert verdict(five_hops(), max_blocks=4) == "TOO_MANY_BLOCKS"


def test_trailing_bytes_are_refused() -> None:
    token = portal_root()
    assert verdict(token + b"\x00") == "MALFORMED"
    assert verdict(token + encode(t.TokenChain(version=VERSION))) == "MALFORMED"


def test_unknown_fields_in_the_envelope_are_refused() -> None:
    assert verdict(portal_root() + b"\xa0\x06\x01") == "MALFORMED"  # field 100, varint 1


def test_an_unknown_version_and_a_v1_chain_are_refused() -> None:
    chain = parsed(portal_root())
    for version in (1, 3):
        chain.version = version
        assert verdict(encode(chain)) == "UNSUPPORTED_VERSION"


def test_a_signature_that_is_not_64_bytes_is_refused() -> None:
    chain = parsed(portal_root())
    chain.blocks[0].signature = chain.blocks[0].signature[:63]
    assert verdict(encode(chain)) == "BAD_SIGNATURE"
    chain.blocks[0].signature += b"\x00\x00"
    assert verdict(encode(chain)) == "BAD_SIGNATURE"


def test_a_navigation_token_is_accepted_once() -> None:
    token = hop(portal_root(), "URSSAF", "SITE", profile=t.PROFILE_NAVIGATION)
    verifier, replays = WORLD.verifier(), MemoryReplayCache(clock=lambda: NOW)
    call = {"method": "/svc.a/Open", "audience": "svc.a", "replays": replays}
    first = sign_proof(signer("SITE"), "/svc.a/Open", "svc.a", token, NOW)
    assert verifier.verify_call(token, first, **call).profile == t.PROFILE_NAVIGATION  # type: ignore[arg-type]
    second = sign_proof(signer("SITE"), "/svc.a/Open", "svc.a", token, NOW)
    with pytest.raises(TokenError, match="REPLAYED"):
        verifier.verify_call(token, second, **call)  # type: ignore[arg-type]
    # Handed back to the site itself, which holds it: accepted once, without a proof.
    back = hop(portal_root(audience=("svc.a", "SITE")), "URSSAF", "SITE",
               profile=t.PROFILE_NAVIGATION, audience=("SITE",))  # fmt: skip
    assert verifier.accept(back, "SITE", replays=replays).holder == holder_of("SITE")
    with pytest.raises(TokenError, match="REPLAYED"):
        verifier.accept(back, "SITE", replays=replays)


def test_a_proof_is_accepted_once_and_only_for_its_call() -> None:
    token = hop(portal_root(), "URSSAF", "CNAV", profile=t.PROFILE_APPLICATION)
    verifier, replays = WORLD.verifier(), MemoryReplayCache(clock=lambda: NOW)
    proof = sign_proof(signer("CNAV"), "/svc.a/Get", "svc.a", token, NOW)
    with pytest.raises(TokenError, match="PROOF_REQUIRED"):
        verifier.verify_call(token, None, method="/svc.a/Get", audience="svc.a", replays=replays)
    with pytest.raises(TokenError, match="BAD_PROOF"):
        verifier.verify_call(token, proof, method="/svc.a/Put", audience="svc.a", replays=replays)
    verifier.verify_call(token, proof, method="/svc.a/Get", audience="svc.a", replays=replays)
    with pytest.raises(TokenError, match="REPLAYED"):
        verifier.verify_call(token, proof, method="/svc.a/Get", audience="svc.a", replays=replays)
    stale = sign_proof(signer("CNAV"), "/svc.a/Get", "svc.a", token, NOW - 31)
    with pytest.raises(TokenError, match="STALE_PROOF"):
        verifier.verify_call(token, stale, method="/svc.a/Get", audience="svc.a", replays=replays)
    by_urssaf = sign_proof(signer("URSSAF"), "/svc.a/Get", "svc.a", token, NOW)
    with pytest.raises(TokenError, match="BAD_PROOF"):
        verifier.verify_call(token, by_urssaf, method="/svc.a/Get", audience="svc.a",
                             replays=replays)  # fmt: skip


def test_a_chain_for_another_audience_is_refused() -> None:
    with pytest.raises(TokenError, match="WRONG_AUDIENCE"):
        WORLD.verifier().verify(portal_root(audience=("svc.a",)), "svc.b")


def test_a_payload_with_an_unknown_field_is_refused_even_when_signed() -> None:
    chain = parsed(portal_root())
    payload = chain.blocks[0].payload + b"\xa0\x06\x01"
    portal = signer("PORTAL")
    chain.blocks[0].payload = payload
    chain.blocks[0].signature = portal.key.sign(block_input(0, portal.key_id, payload, b""))
    assert verdict(encode(chain)) == "MALFORMED"


def test_revoking_an_ancestor_refuses_every_chain_below_it() -> None:
    root = portal_root()
    token = hop(hop(root, "URSSAF", "CNAV"), "CNAV", "SITE")
    verifier = WORLD.verifier()
    chain = verifier.verify(token)
    view = Revocations(1, NOW + 90, 0, frozenset({chain.hops[1].revocation_id}))
    with pytest.raises(TokenError) as refused:
        WORLD.verifier(revocations=lambda: view).verify(token)
    assert (refused.value.reason, refused.value.block) == ("REVOKED", 1)
    assert WORLD.verifier(revocations=lambda: view).verify(root).hops[0].position == 0
    # A verifier that cached the prefix before the revocation refuses it too.
    verifier.revocations = lambda: view
    with pytest.raises(TokenError, match="REVOKED"):
        verifier.verify(token)


def test_a_retired_key_verifies_what_it_signed_before_retirement_only() -> None:
    portal = signer("PORTAL")
    directory = WORLD.directory()
    retired = replace(directory.keys[portal.key_id], valid_until=NOW - 100)
    directory = replace(directory, keys={**directory.keys, portal.key_id: retired})
    verifier = Verifier(directory, clock=lambda: NOW)
    assert verifier.verify(portal_root(now=NOW - 200)).subject == "declarant:42"
    with pytest.raises(TokenError, match="KEY_NOT_VALID"):
        verifier.verify(portal_root(now=NOW - 50))


def test_a_five_hop_chain_walks_back_to_its_root() -> None:
    chain = WORLD.verifier().verify(five_hops())
    walk = [(h.delegator.organism, h.holder.organism, h.purpose) for h in chain.hops]
    assert walk == [
        ("PORTAL", "URSSAF", "sign-in"),
        ("URSSAF", "CNAV", "URSSAF to CNAV"),
        ("CNAV", "SITE", "CNAV to SITE"),
        ("SITE", "URSSAF", "SITE to URSSAF"),
        ("URSSAF", "CNAV", "URSSAF to CNAV"),
    ]
    assert chain.subject == "declarant:42" and len({h.revocation_id for h in chain.hops}) == 5


def test_a_cached_prefix_still_checks_the_new_blocks_and_the_time() -> None:
    verifier = WORLD.verifier()
    token = five_hops()
    verifier.verify(token)
    tampered = parsed(token)
    tampered.blocks[-1].signature = bytes(64)
    with pytest.raises(TokenError, match="BAD_SIGNATURE"):
        verifier.verify(encode(tampered))
    with pytest.raises(TokenError, match="EXPIRED"):
        verifier.verify(token, now=NOW + 4000)
