"""Writes token_suite/vectors/v2.json: chains, uses (proofs and hand-backs), directories,
revocation lists and receipts of the test world, each with its expected verdict.

    python -m tests.token.make_token_vectors

The file is committed; tests/token/test_token_vectors.py checks every case against it using
nothing but the file and the library, as an implementation in another language would, and
fails unless every verdict of token_suite.errors.Reason has a vector.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from interops.token.v1 import token_pb2 as t

from tests.token.token_world import (
    NOW,
    ORGANISMS,
    World,
    five_hops,
    holder_of,
    hop,
    portal_root,
    public_key,
    session,
    signer,
)
from token_suite.chain import Terms, grant, issue_root, sign_proof
from token_suite.directory import sign_directory
from token_suite.encryption_keys import encryption_key_id, public_of
from token_suite.errors import TokenError
from token_suite.keys import public_bytes
from token_suite.receipts import sign_receipt
from token_suite.revocations import Revocations, open_revocations, sign_revocations
from token_suite.verify import Verifier
from token_suite.wire import block_input, encode

OUT = Path(__file__).resolve().parents[2] / "token_suite" / "vectors" / "v2.json"
ROOT = signer("ROOT")
# Retired keys: URSSAF's second key (a holder whose proofs must now fail) and the portal's
# second key (which may no longer sign blocks).
URSSAF_2 = signer("URSSAF", 2)
PORTAL_2 = signer("PORTAL", 2)
EXTRA_KEYS = [
    public_key(URSSAF_2, valid_until=NOW - 10),
    public_key(PORTAL_2, valid_until=NOW - 100),
]
WORLD = World(extra_keys=EXTRA_KEYS)
SMALL_ORDER = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
# An X25519 point of order 8: refused as an encryption key.
SMALL_ORDER_X25519 = "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"
GET = "/interops.registry.v1.RegistryService/GetCompany"


@contextlib.contextmanager
def _fixed_randomness(section: str) -> Iterator[None]:
    """While one section's vectors are made, `os.urandom` (the library's source of chain ids,
    token ids and proof nonces) is a stream derived from the section's name: with keys from fixed
    seeds and deterministic Ed25519 signatures, every run then writes the same file. Adding a
    case to a section changes the ids of the cases made after it in that section only."""
    draws = itertools.count()

    def fixed(size: int) -> bytes:
        return hashlib.shake_256(f"{section}/{next(draws)}".encode()).digest(size)

    with mock.patch("os.urandom", fixed):
        yield


def _section(name: str, make: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    with _fixed_randomness(name):
        return make()


def _chain(token: bytes) -> t.TokenChain:
    chain = t.TokenChain()
    chain.ParseFromString(token)
    return chain


def _edit_block(token: bytes, index: int, edit: Callable[[t.Block], None], by: str) -> bytes:
    """Block `index` changed by `edit`, properly re-signed by `by`'s key over the real prefix."""
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


def _v1_chain() -> bytes:
    """A chain exactly as version 1 made it (v1 tag and version byte)."""
    block = t.Block()
    block.ParseFromString(_chain(portal_root(holder="URSSAF")).blocks[0].payload)
    payload, portal = encode(block), signer("PORTAL")
    key = portal.key_id.encode()
    signing_input = b"".join((b"interops.token.v1/block\x00\x01\x00", bytes([len(key)]), key,
                              struct.pack(">I", len(payload)), payload))  # fmt: skip
    signed = t.SignedBlock(payload=payload, key_id=portal.key_id,
                           signature=portal.key.sign(signing_input))  # fmt: skip
    return encode(t.TokenChain(version=1, blocks=[signed]))


def _edit_holder(token: bytes, party: t.Party) -> bytes:
    return _edit_block(token, 0, lambda b: b.holder.CopyFrom(party), "PORTAL")


def _revocation_list(sequence: int, expires: int, **content: Any) -> bytes:
    view = Revocations(sequence, expires, 1, **content)
    return sign_revocations(ROOT, view.to_list(NOW - 5, expires))


def _chain_cases() -> list[dict[str, Any]]:
    two = hop(portal_root(), "URSSAF", "CNAV", purpose="call the pension file")
    other = hop(portal_root(sirens=("123456782",)), "URSSAF", "CNAV")
    spliced = t.TokenChain(version=2, blocks=[_chain(two).blocks[0], _chain(other).blocks[1]])
    late = hop(portal_root(now=NOW - 3500), "URSSAF", "CNAV", now=NOW - 10,
               profile=t.PROFILE_APPLICATION)  # fmt: skip
    no_hops = hop(portal_root(max_hops=1), "URSSAF", "CNAV")
    application = hop(portal_root(), "URSSAF", "CNAV", profile=t.PROFILE_APPLICATION)
    second_block = Verifier(WORLD.directory(), clock=lambda: NOW).verify(two).hops[1]
    revoked_block = _revocation_list(7, NOW + 90, blocks=frozenset({second_block.revocation_id}))
    cut_off = _revocation_list(8, NOW + 90, cutoffs={"declarant:42": NOW + 1})
    cut_before = _revocation_list(9, NOW + 90, cutoffs={"declarant:42": NOW - 1})
    retired_root = issue_root(PORTAL_2, "declarant:42", Terms(
        holder=holder_of("URSSAF"), profile=t.PROFILE_PORTAL, audience=("svc.a",),
    ), NOW)  # fmt: skip
    session_public = public_bytes(session().key)
    cases: list[tuple[str, bytes, str, dict[str, Any]]] = [
        ("root held by a session key", portal_root(), "svc.a", {}),
        ("root held by a directory key", portal_root(holder="URSSAF"), "svc.a", {}),
        ("two blocks", two, "svc.a", {}),
        ("five hops", five_hops(), "svc.b", {}),
        ("wrong audience", two, "svc.z", {}),
        ("payload byte flipped", _flip(two, 1, "payload"), "svc.a", {}),
        ("signature byte flipped", _flip(two, 0, "signature"), "svc.a", {}),
        ("block spliced from another chain", encode(spliced), "svc.a", {}),
        ("hop not signed by the holder", hop(portal_root(holder="CNAV"), "URSSAF", "SITE"),
         "svc.a", {}),
        ("root by a key not in the directory", issue_root(signer("PORTAL", 99), "declarant:42",
         Terms(holder=holder_of("URSSAF"), audience=("svc.a",), profile=t.PROFILE_PORTAL), NOW),
         "svc.a", {}),
        ("root by a retired key", retired_root, "svc.a", {}),
        ("holder names no key", _edit_holder(portal_root(), t.Party(organism="PORTAL")),
         "svc.a", {}),
        ("holder names both keys", _edit_holder(portal_root(), t.Party(
            organism="PORTAL", key_id=signer("PORTAL").key_id, public_key=session_public)),
         "svc.a", {}),
        ("session key held by an organism that is no portal", _edit_holder(
            portal_root(), t.Party(organism="URSSAF", public_key=session_public)), "svc.a", {}),
        ("session key of small order", _edit_holder(
            portal_root(), t.Party(organism="PORTAL", public_key=bytes([1]) + bytes(31))),
         "svc.a", {}),
        ("session key named by an organism for the portal", _edit_block(
            two, 1, lambda b: b.holder.CopyFrom(
                t.Party(organism="PORTAL", public_key=session_public)), "URSSAF"),
         "svc.a", {}),
        ("grant widened", _edit_block(two, 1, lambda b: b.grants[0].sirens.append("999999990"),
                                      "URSSAF"), "svc.a", {}),
        ("expiry past the profile's lifetime",
         _edit_block(two, 1, lambda b: setattr(b, "expires", b.expires + 9), "URSSAF"),
         "svc.a", {}),
        ("audience widened", _edit_block(two, 1, lambda b: b.audience.append("svc.z"), "URSSAF"),
         "svc.a", {}),
        ("expiry extended", _edit_block(late, 1, lambda b: setattr(b, "expires", b.expires + 1),
                                        "URSSAF"), "svc.a", {}),
        ("chain id changed", _edit_block(late, 1, lambda b: setattr(b, "chain_id", bytes(16)),
                                         "URSSAF"), "svc.a", {}),
        ("subject changed", _edit_block(late, 1, lambda b: setattr(b, "subject", "declarant:43"),
                                        "URSSAF"), "svc.a", {}),
        ("hops not decreasing", _edit_block(late, 1, lambda b: setattr(b, "max_hops", 5),
                                            "URSSAF"), "svc.a", {}),
        ("hop after a block that allows none", hop(no_hops, "CNAV", "SITE", max_hops=0),
         "svc.a", {}),
        ("profile moved back", hop(application, "CNAV", "SITE", profile=t.PROFILE_PORTAL),
         "svc.a", {}),
        ("not yet valid", portal_root(now=NOW + 60), "svc.a", {}),
        ("expired", portal_root(now=NOW - 4000), "svc.a", {}),
        ("trailing byte", two + b"\x00", "svc.a", {}),
        ("a v1 chain", _v1_chain(), "svc.a", {}),
        ("unknown version", encode(t.TokenChain(version=3, blocks=_chain(two).blocks)),
         "svc.a", {}),
        ("root by a non-portal", _edit_block(portal_root(), 0,
                                             lambda b: setattr(b.delegator, "organism", "URSSAF"),
                                             "URSSAF"), "svc.a", {}),
        ("over the size cap", two, "svc.a", {"max_bytes": 256}),
        ("over the block cap", five_hops(), "svc.a", {"max_blocks": 4}),
        ("block revoked by id", two, "svc.a", {"revocations": revoked_block.hex()}),
        ("subject cut off after the root", two, "svc.a", {"revocations": cut_off.hex()}),
        ("subject cut off before the root", two, "svc.a", {"revocations": cut_before.hex()}),
    ]  # fmt: skip
    return [
        {"name": name, "token": token.hex(), "audience": audience, **options,
         **dict(zip(("verdict", "block"), _chain_verdict(token, audience, options), strict=True))}
        for name, token, audience, options in cases
    ]  # fmt: skip


def _verifier(options: dict[str, Any]) -> Verifier:
    view = Revocations.none()
    if "revocations" in options:
        view = open_revocations(bytes.fromhex(options["revocations"]), _roots(), NOW)
    limits = {k: options[k] for k in ("max_bytes", "max_blocks") if k in options}
    return Verifier(WORLD.directory(), clock=lambda: NOW, revocations=lambda: view, **limits)


def _roots() -> dict[str, bytes]:
    return {ROOT.key_id: public_bytes(ROOT.key)}


def _chain_verdict(token: bytes, audience: str, options: dict[str, Any]) -> tuple[str, int | None]:
    try:
        _verifier(options).verify(token, audience)
    except TokenError as error:
        return error.reason, error.block
    return "VALID", None


def _use(token: bytes, by: Any, method: str = GET, audience: str = "svc.a",
         moment: int = NOW) -> dict[str, Any]:  # fmt: skip
    proof = sign_proof(by, method, audience, token, moment) if by is not None else None
    return {"proof": proof.hex() if proof else None, "method": method, "audience": audience}


def _call_cases() -> list[dict[str, Any]]:
    two = hop(portal_root(), "URSSAF", "CNAV")
    prefix = encode(t.TokenChain(version=2, blocks=[_chain(two).blocks[0]]))
    portal = portal_root(holder="PORTAL", audience=("svc.a", "SITE"))
    navigation = hop(portal_root(holder="URSSAF", audience=("svc.a", "SITE")), "URSSAF", "SITE",
                     profile=t.PROFILE_NAVIGATION, audience=("SITE",))  # fmt: skip
    by_retired = issue_root(signer("PORTAL"), "organism:URSSAF", Terms(
        holder=URSSAF_2.as_holder(), profile=t.PROFILE_APPLICATION, audience=("svc.a",),
        grants=grant("registry.read")), NOW - 100)  # fmt: skip
    same = _use(two, signer("CNAV"))
    cases = [
        ("proof by the last holder, then the same proof again", two,
         [same, same]),
        ("no proof", two, [_use(two, None)]),
        ("proof for another method", two,
         [{**_use(two, signer("CNAV")), "method": GET.replace("Company", "Establishment")}]),
        ("proof by an earlier holder", two, [_use(two, signer("URSSAF"))]),
        ("proof too old", two, [_use(two, signer("CNAV"), moment=NOW - 31)]),
        ("prefix cut back to URSSAF's block: CNAV's proof, then URSSAF's", prefix,
         [_use(prefix, signer("CNAV")), _use(prefix, signer("URSSAF"))]),
        ("session chain proved by its session key", portal, [_use(portal, session())]),
        ("session chain proved by the portal's directory key", portal,
         [_use(portal, signer("PORTAL"))]),
        ("proof by a retired holder key", by_retired, [_use(by_retired, URSSAF_2)]),
        ("navigation chain handed back to its holder, twice", navigation,
         [{"accept": "SITE"}, {"accept": "SITE"}]),
        ("session chain handed to a partner", portal, [{"accept": "SITE"}]),
    ]  # fmt: skip
    return [{"name": name, "token": token.hex(), "steps": _run_steps(token, steps)}
            for name, token, steps in cases]  # fmt: skip


def _run_steps(token: bytes, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from token_suite.replay import MemoryReplayCache

    verifier, replays = _verifier({}), MemoryReplayCache(clock=lambda: NOW)
    done = []
    for step in steps:
        try:
            if "accept" in step:
                verifier.accept(token, step["accept"], replays=replays)
            else:
                proof = bytes.fromhex(step["proof"]) if step["proof"] else None
                verifier.verify_call(token, proof, method=step["method"],
                                     audience=step["audience"], replays=replays)  # fmt: skip
            verdict = "VALID"
        except TokenError as error:
            verdict = error.reason
        done.append({**step, "verdict": verdict})
    return done


def _directory(
    expires: int = NOW + 3600,
    extra: tuple[t.PublicKey, ...] = (),
    encryption: tuple[t.PublicKey, ...] = (),
) -> t.Directory:
    directory = WORLD.directory()
    return t.Directory(
        serial=1, issued_at=NOW - 10, expires=expires,
        organisms=list(directory.organisms.values()),
        keys=[t.PublicKey(key_id=e.key_id, organism=e.organism, public_key=e.public,
                          valid_from=e.valid_from, valid_until=e.valid_until)
              for e in directory.keys.values()] + list(extra),
        encryption_keys=encryption,
    )  # fmt: skip


def _encryption_key(organism: str, public: bytes) -> t.PublicKey:
    return t.PublicKey(key_id=encryption_key_id(public), organism=organism, public_key=public,
                       valid_from=1)  # fmt: skip


def _directory_cases() -> list[dict[str, Any]]:
    good = sign_directory(_directory(), ROOT.key, ROOT.key_id)
    flipped = t.SignedDirectory()
    flipped.CopyFrom(good)
    flipped.signature = bytes([good.signature[0] ^ 1]) + good.signature[1:]
    small = t.PublicKey(key_id="small", organism="URSSAF", valid_from=1,
                        public_key=bytes.fromhex(SMALL_ORDER))  # fmt: skip
    other = signer("ROOT", 2)
    sealing = _encryption_key("URSSAF", public_of(hashlib.sha256(b"URSSAF x25519").digest()))
    small_sealing = _encryption_key("URSSAF", bytes.fromhex(SMALL_ORDER_X25519))
    cases = [
        ("valid", encode(good), {}),
        ("a small-order key listed", encode(sign_directory(_directory(extra=(small,)), ROOT.key,
                                                           ROOT.key_id)), {}),
        ("signed by a key that is not pinned", encode(sign_directory(_directory(), other.key,
                                                                     other.key_id)), {}),
        ("signature byte flipped", encode(flipped), {}),
        ("expired", encode(sign_directory(_directory(NOW - 1), ROOT.key, ROOT.key_id)), {}),
        ("over the size cap", encode(good), {"max_bytes": 64}),
        ("trailing byte", encode(good) + b"\x00", {}),
        ("with an encryption key", encode(sign_directory(_directory(encryption=(sealing,)),
                                                         ROOT.key, ROOT.key_id)), {}),
        ("a small-order encryption key listed",
         encode(sign_directory(_directory(encryption=(small_sealing,)), ROOT.key,
                               ROOT.key_id)), {}),
    ]  # fmt: skip
    from token_suite.directory import open_directory

    result = []
    for name, signed, options in cases:
        try:
            open_directory(signed, _roots(), NOW, **options)
            verdict = "VALID"
        except TokenError as error:
            verdict = error.reason
        result.append({"name": name, "signed": signed.hex(), **options, "verdict": verdict})
    return result


def _revocation_cases() -> list[dict[str, Any]]:
    good = _revocation_list(5, NOW + 90, blocks=frozenset({bytes(32)}),
                            cutoffs={"declarant:7": NOW - 60})  # fmt: skip
    envelope = t.SignedRevocations()
    envelope.ParseFromString(good)
    envelope.signature = bytes([envelope.signature[0] ^ 1]) + envelope.signature[1:]
    result = []
    for name, signed in (
        ("valid", good),
        ("signature byte flipped", encode(envelope)),
        ("expired", _revocation_list(6, NOW - 1)),
        (
            "signed by a key that is not pinned",
            sign_revocations(signer("ROOT", 2), Revocations(5, NOW + 90, 1).to_list(NOW, NOW + 90)),
        ),
    ):
        try:
            sequence: int | None = open_revocations(signed, _roots(), NOW).sequence
            verdict = "VALID"
        except TokenError as error:
            sequence, verdict = None, error.reason
        result.append({"name": name, "signed": signed.hex(), "verdict": verdict,
                       "sequence": sequence})  # fmt: skip
    # A rollback: a verifier holding sequence 5 is offered sequence 4 and keeps 5.
    result.append({"name": "rollback to an older sequence", "held": good.hex(),
                   "signed": _revocation_list(4, NOW + 90).hex(), "verdict": "VALID",
                   "sequence": 5})  # fmt: skip
    return result


def _receipt_cases() -> list[dict[str, Any]]:
    sample = signer("CNAV")
    digest = hashlib.sha256(b"the delivered file").digest()
    signature = sign_receipt(sample, "delivery-1", digest)
    base = {"key_id": sample.key_id, "public_key": public_bytes(sample.key).hex(),
            "delivery_id": "delivery-1", "sha256": digest.hex(),
            "signature": signature.hex()}  # fmt: skip
    return [
        {"name": "valid", **base, "verdict": "VALID"},
        {"name": "another delivery", **base, "delivery_id": "delivery-2",
         "verdict": "BAD_SIGNATURE"},
        {"name": "another digest", **base, "sha256": bytes(32).hex(),
         "verdict": "BAD_SIGNATURE"},
    ]  # fmt: skip


def main() -> None:
    """Writes the vectors file."""
    directory = WORLD.directory()
    document = {
        "spec": "token_suite/SPEC.md, version 2",
        "now": NOW,
        "leeway": 30,
        "max_bytes": 4096,
        "max_blocks": 8,
        "root_kinds": ["ORGANISM_KIND_PORTAL"],
        "root_key": {"key_id": ROOT.key_id, "public_key": public_bytes(ROOT.key).hex()},
        "organisms": [{"code": c, "kind": t.OrganismKind.Name(k)} for c, k in ORGANISMS.items()],
        "keys": [
            {
                "key_id": e.key_id,
                "organism": e.organism,
                "public_key": e.public.hex(),
                "valid_from": e.valid_from,
                "valid_until": e.valid_until,
            }
            for e in directory.keys.values()
        ],
        "session_key": {"organism": "PORTAL", "public_key": public_bytes(session().key).hex()},
        "chains": _section("chains", _chain_cases),
        "calls": _section("calls", _call_cases),
        "directories": _section("directories", _directory_cases),
        "revocation_lists": _section("revocation_lists", _revocation_cases),
        "receipts": _section("receipts", _receipt_cases),
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n")
    counts = {k: len(v) for k, v in document.items() if isinstance(v, list) and k != "keys"}
    print(f"wrote {counts} to {OUT}")


if __name__ == "__main__":
    main()
