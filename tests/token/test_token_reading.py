"""The verifier's shortcuts give the verdicts of the plain way: a verifier whose cache holds a
prefix against one with no cache, on every mutation of a few chains (truncations, flipped and
inserted bytes, re-encodings), and the SIREN/SIRET checks against one match per identifier."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from interops.token.v1 import token_pb2 as t

from tests.token.token_world import World, five_hops, hop, portal_root
from token_suite.errors import TokenError
from token_suite.grants import grants_from
from token_suite.verify import Verifier
from token_suite.wire import VERSION, encode

WORLD = World()


def _outcome(read: Callable[[], object]) -> object:
    try:
        return read()
    except TokenError as error:
        return error.reason


def _varint(value: int, size: int) -> bytes:
    """`value` as a varint of exactly `size` bytes (longer than needed: not canonical)."""
    out = bytearray()
    for _ in range(size - 1):
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _size(value: int) -> int:
    """The bytes of `value` as a varint, in the shortest form."""
    return max(1, (value.bit_length() + 6) // 7)


def _field(body: bytes) -> bytes:
    """A block as field 2 of the chain, canonically."""
    return b"\x12" + _varint(len(body), _size(len(body))) + body


def _mutations(token: bytes) -> Iterator[bytes]:
    """The token cut, with each byte changed, with a byte inserted, and re-encoded."""
    yield token
    for end in range(len(token)):
        yield token[:end]
    for at in range(len(token)):
        for change in (0x01, 0x80, 0xFF):
            yield token[:at] + bytes([token[at] ^ change]) + token[at + 1 :]
        yield token[:at] + b"\x00" + token[at:]
    yield token + b"\x00"
    yield token + b"\x18\x01"  # an unknown field after the blocks
    chain = t.TokenChain()
    chain.ParseFromString(token)
    head = b"\x08" + bytes([VERSION])
    for index, signed in enumerate(chain.blocks):
        blocks = [encode(block) for block in chain.blocks]
        body = blocks[index]
        # The block's length, then its payload's, in one byte more than needed.
        longer = b"\x12" + _varint(len(body), _size(len(body)) + 1) + body
        yield head + b"".join(_field(b) if i != index else longer for i, b in enumerate(blocks))
        payload = signed.payload
        inner = (
            b"\x0a"
            + _varint(len(payload), _size(len(payload)) + 1)
            + body[1 + _size(len(payload)) :]
        )
        yield head + b"".join(_field(b) if i != index else _field(inner)
                              for i, b in enumerate(blocks))  # fmt: skip
        # Its fields out of order, an empty key id, a field repeated, an unknown field.
        for variant in (
            encode(t.SignedBlock(signature=signed.signature)) + encode(
                t.SignedBlock(payload=signed.payload, key_id=signed.key_id)),
            encode(t.SignedBlock(payload=signed.payload, signature=signed.signature)),
            body + encode(t.SignedBlock(key_id=signed.key_id)),
            body + b"\x20\x01",
        ):  # fmt: skip
            copy = t.TokenChain()
            copy.CopyFrom(chain)
            rebuilt = [encode(b) for b in copy.blocks]
            rebuilt[index] = variant
            yield head + b"".join(_field(b) for b in rebuilt)
    # Lengths under 128 in two bytes, and an empty payload written out: not canonical either.
    signed = chain.blocks[0]
    tail = encode(t.SignedBlock(key_id=signed.key_id, signature=signed.signature))
    for payload in (b"\x0a\x0a" + bytes(10), b"\x0a\x8a\x00" + bytes(10), b"\x0a\x00"):
        body = payload + tail
        yield head + b"\x12" + _varint(len(body), 1) + body
        yield head + b"\x12" + _varint(len(body), 2) + body
    yield encode(t.TokenChain(version=VERSION + 1, blocks=chain.blocks))
    yield encode(t.TokenChain(version=VERSION))


def _identifier_verdict(values: list[str], digits: int) -> bool:
    return all(re.fullmatch(f"[0-9]{{{digits}}}", value) for value in values)


@pytest.mark.parametrize(
    "values",
    [
        ["123456782"], ["123456782", "732829320", "552100554"], ["12345678"], ["1234567820"],
        ["123456782\n123456782"], ["12345678", "2123456782"], ["123456782", ""],
        ["١٢٣٤٥٦٧٨٢"], ["12345678²"], ["123456782\n"], ["\n123456782"], ["12345678a"],
        ["12345678200011"], ["12345678200011", "73282932000029"], ["1234567820001"],
        ["12345678200011\n12345678200011"], ["123456782000110"], ["1234567820001\n"],
    ],
)  # fmt: skip
def test_siren_and_siret_checks_refuse_what_a_match_per_identifier_refuses(
    values: list[str],
) -> None:
    for field, digits in (("sirens", 9), ("sirets", 14)):
        grant = t.Grant(right="registry.read")
        getattr(grant, field).extend(values)
        outcome = _outcome(lambda grant=grant: grants_from([grant]))  # type: ignore[misc]
        expected = _identifier_verdict(values, digits)
        assert (outcome != "MALFORMED") == expected, (field, values)


def _verdict(verifier: Verifier, token: bytes) -> str:
    try:
        verifier.verify(token, "svc.a")
    except TokenError as error:
        return f"{error.reason} {error.block}"
    return "VALID"


def test_a_verifier_with_cached_prefixes_gives_the_uncached_verdict_on_every_mutation() -> None:
    five = five_hops()
    chain = t.TokenChain()
    chain.ParseFromString(five)
    cold = WORLD.verifier(prefix_cache_size=0)
    warm = WORLD.verifier()
    for count in range(1, 6):  # every prefix cached, the whole chain too
        warm.verify(encode(t.TokenChain(version=VERSION, blocks=chain.blocks[:count])))
    # A chain that reuses the cached 4-block prefix's last signature after other blocks.
    other = hop(hop(hop(portal_root(max_hops=4), "URSSAF", "CNAV"), "CNAV", "SITE"),
                "SITE", "URSSAF")  # fmt: skip
    forged = t.TokenChain()
    forged.ParseFromString(other)
    forged.blocks[3].signature = chain.blocks[3].signature
    cases = [*_mutations(five), encode(forged), encode(forged) + five[-(len(five) // 5) :]]
    for token in cases:
        assert _verdict(warm, token) == _verdict(cold, token), token.hex()
