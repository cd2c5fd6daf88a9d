"""Writes token_suite/vectors/v1.json: tokens of the test world with their expected verdict.

    python -m tests.token.make_token_vectors

The file is committed; tests/token/test_token_vectors.py checks every case against it using nothing
but the file, as an implementation in another language would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from interops.token.v1 import token_pb2 as t

from tests.token.token_world import NOW, ORGANISMS, World, five_hops, hop, portal_root, signer
from token_suite.chain import sign_proof
from token_suite.errors import TokenError
from token_suite.keys import public_bytes
from token_suite.wire import block_input, encode

OUT = Path(__file__).resolve().parents[2] / "token_suite" / "vectors" / "v1.json"


def _chain(token: bytes) -> t.TokenChain:
    chain = t.TokenChain()
    chain.ParseFromString(token)
    return chain


def _edit_block(token: bytes, index: int, edit: Callable[[t.Block], None], by: str) -> bytes:
    chain = _chain(token)
    block = t.Block()
    block.ParseFromString(chain.blocks[index].payload)
    edit(block)
    payload = encode(block)
    key = signer(by)
    previous = chain.blocks[index - 1].signature if index else b""
    chain.blocks[index].payload = payload
    chain.blocks[index].key_id = key.key_id
    chain.blocks[index].signature = key.key.sign(block_input(index, key.key_id, payload, previous))
    return encode(chain)


def _flip(token: bytes, index: int, field: str) -> bytes:
    chain = _chain(token)
    value = bytearray(getattr(chain.blocks[index], field))
    value[len(value) // 2] ^= 0x01
    setattr(chain.blocks[index], field, bytes(value))
    return encode(chain)


def _cases() -> list[tuple[str, bytes, str]]:
    two = hop(portal_root(), "URSSAF", "CNAV", purpose="call the pension file")
    other = hop(portal_root(sirens=("123456782",)), "URSSAF", "CNAV")
    spliced = t.TokenChain(version=1, blocks=[_chain(two).blocks[0], _chain(other).blocks[1]])
    return [
        ("root only", portal_root(), "svc.a"),
        ("two blocks", two, "svc.a"),
        ("five hops", five_hops(), "svc.b"),
        ("wrong audience", two, "svc.z"),
        ("payload byte flipped", _flip(two, 1, "payload"), "svc.a"),
        ("signature byte flipped", _flip(two, 0, "signature"), "svc.a"),
        ("block spliced from another chain", encode(spliced), "svc.a"),
        ("hop not signed by the holder", hop(portal_root(holder="CNAV"), "URSSAF", "SITE"),
         "svc.a"),
        ("grant widened", _edit_block(two, 1, lambda b: b.grants[0].sirens.append("999999990"),
                                      "URSSAF"), "svc.a"),
        ("expiry past the profile's lifetime",
         _edit_block(two, 1, lambda b: setattr(b, "expires", b.expires + 9), "URSSAF"), "svc.a"),
        ("audience widened", _edit_block(two, 1, lambda b: b.audience.append("svc.z"), "URSSAF"),
         "svc.a"),
        ("not yet valid", portal_root(now=NOW + 60), "svc.a"),
        ("expired", portal_root(now=NOW - 4000), "svc.a"),
        ("trailing byte", two + b"\x00", "svc.a"),
        ("unknown version", encode(t.TokenChain(version=2, blocks=_chain(two).blocks)), "svc.a"),
        ("root by a non-portal", _edit_block(portal_root(), 0,
                                             lambda b: setattr(b.delegator, "organism", "URSSAF"),
                                             "URSSAF"), "svc.a"),
    ]  # fmt: skip


def _verdict(token: bytes, audience: str) -> tuple[str, int | None]:
    try:
        World().verifier().verify(token, audience)
    except TokenError as error:
        return error.reason, error.block
    return "VALID", None


def main() -> None:
    """Writes the vectors file."""
    world = World()
    directory = world.directory()
    cases = []
    for name, token, audience in _cases():
        verdict, block = _verdict(token, audience)
        cases.append({"name": name, "token": token.hex(), "audience": audience,
                      "verdict": verdict, "block": block})  # fmt: skip
    two = bytes.fromhex(cases[1]["token"])  # type: ignore[arg-type]
    proof = sign_proof(signer("CNAV"), "/interops.registry.v1.RegistryService/GetCompany",
                       "svc.a", two, NOW)  # fmt: skip
    document = {
        "spec": "token_suite/SPEC.md, version 1",
        "now": NOW,
        "leeway": 30,
        "root_kinds": ["ORGANISM_KIND_PORTAL"],
        "organisms": [{"code": c, "kind": t.OrganismKind.Name(k)} for c, k in ORGANISMS.items()],
        "keys": [
            {
                "key_id": e.key_id,
                "organism": e.organism,
                "public_key": public_bytes(e.public).hex(),
                "valid_from": e.valid_from,
                "valid_until": e.valid_until,
            }
            for e in directory.keys.values()
        ],
        "cases": cases,
        "proofs": [
            {
                "name": "valid proof",
                "token": two.hex(),
                "proof": proof.hex(),
                "method": "/interops.registry.v1.RegistryService/GetCompany",
                "audience": "svc.a",
                "verdict": "VALID",
            },
            {
                "name": "proof for another method",
                "token": two.hex(),
                "proof": proof.hex(),
                "method": "/interops.registry.v1.RegistryService/GetEstablishment",
                "audience": "svc.a",
                "verdict": "BAD_PROOF",
            },
        ],
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {len(cases)} chain cases to {OUT}")


if __name__ == "__main__":
    main()
