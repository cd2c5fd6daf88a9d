"""The committed test vectors, checked with nothing but the vectors file and the library, as an
implementation in another language would check itself; and the closed list of verdicts: every
Reason has a vector, and SPEC.md lists exactly the Reasons."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from interops.token.v1 import token_pb2 as t

from token_suite.directory import TrustDirectory, open_directory
from token_suite.errors import Reason, TokenError
from token_suite.receipts import receipt_valid
from token_suite.replay import MemoryReplayCache
from token_suite.revocations import RevocationCache, Revocations, open_revocations
from token_suite.verify import Verifier

SUITE = Path(__file__).resolve().parents[2] / "token_suite"
VECTORS = json.loads((SUITE / "vectors" / "v2.json").read_text())
NOW = VECTORS["now"]
ROOTS = {VECTORS["root_key"]["key_id"]: bytes.fromhex(VECTORS["root_key"]["public_key"])}


def _verifier(case: dict[str, Any]) -> Verifier:
    directory = TrustDirectory.build(
        [t.Organism(code=o["code"], kind=t.OrganismKind.Value(o["kind"]))
         for o in VECTORS["organisms"]],
        [t.PublicKey(key_id=k["key_id"], organism=k["organism"],
                     public_key=bytes.fromhex(k["public_key"]), valid_from=k["valid_from"],
                     valid_until=k["valid_until"]) for k in VECTORS["keys"]],
    )  # fmt: skip
    view = Revocations.none()
    if case.get("revocations"):
        view = open_revocations(bytes.fromhex(case["revocations"]), ROOTS, NOW)
    roots = frozenset(t.OrganismKind.Value(kind) for kind in VECTORS["root_kinds"])
    return Verifier(
        directory, leeway=VECTORS["leeway"], root_kinds=roots, clock=lambda: NOW,
        max_bytes=case.get("max_bytes", VECTORS["max_bytes"]),
        max_blocks=case.get("max_blocks", VECTORS["max_blocks"]), revocations=lambda: view,
    )  # fmt: skip


def _verdict(check: Any) -> tuple[str, int | None]:
    try:
        check()
    except TokenError as error:
        return error.reason, error.block
    return "VALID", None


@pytest.mark.parametrize("case", VECTORS["chains"], ids=lambda case: case["name"])
def test_chain_vector(case: dict[str, Any]) -> None:
    token = bytes.fromhex(case["token"])
    verdict = _verdict(lambda: _verifier(case).verify(token, case["audience"]))
    assert verdict == (case["verdict"], case["block"])


@pytest.mark.parametrize("case", VECTORS["calls"], ids=lambda case: case["name"])
def test_call_vector(case: dict[str, Any]) -> None:
    token, verifier = bytes.fromhex(case["token"]), _verifier({})
    replays = MemoryReplayCache(clock=lambda: NOW)
    for step in case["steps"]:
        if "accept" in step:
            verdict, _ = _verdict(lambda s=step: verifier.accept(token, s["accept"],
                                                                 replays=replays))  # fmt: skip
        else:
            proof = bytes.fromhex(step["proof"]) if step["proof"] else None
            verdict, _ = _verdict(lambda s=step, p=proof: verifier.verify_call(
                token, p, method=s["method"], audience=s["audience"], replays=replays))  # fmt: skip
        assert verdict == step["verdict"], step


@pytest.mark.parametrize("case", VECTORS["directories"], ids=lambda case: case["name"])
def test_directory_vector(case: dict[str, Any]) -> None:
    options = {"max_bytes": case["max_bytes"]} if "max_bytes" in case else {}
    signed = bytes.fromhex(case["signed"])
    verdict, _ = _verdict(lambda: open_directory(signed, ROOTS, NOW, **options))
    assert verdict == case["verdict"]


@pytest.mark.parametrize("case", VECTORS["revocation_lists"], ids=lambda case: case["name"])
def test_revocation_list_vector(case: dict[str, Any]) -> None:
    signed = bytes.fromhex(case["signed"])
    if "held" in case:  # a cache holding one list is offered another after its refresh time
        offers, moment = iter([bytes.fromhex(case["held"]), signed]), [float(NOW)]
        cache = RevocationCache(lambda: next(offers), ROOTS, 30, clock=lambda: moment[0])
        cache.current()
        moment[0] += 31
        verdict, _ = _verdict(cache.current)
        assert (verdict, cache.current().sequence) == (case["verdict"], case["sequence"])
        return
    verdict, _ = _verdict(lambda: open_revocations(signed, ROOTS, NOW))
    assert verdict == case["verdict"]
    if verdict == "VALID":
        assert open_revocations(signed, ROOTS, NOW).sequence == case["sequence"]


@pytest.mark.parametrize("case", VECTORS["receipts"], ids=lambda case: case["name"])
def test_receipt_vector(case: dict[str, Any]) -> None:
    valid = receipt_valid(
        bytes.fromhex(case["public_key"]), case["delivery_id"], bytes.fromhex(case["sha256"]),
        bytes.fromhex(case["signature"]), key_id=case["key_id"],
    )  # fmt: skip
    assert ("VALID" if valid else "BAD_SIGNATURE") == case["verdict"]


def _all_verdicts() -> set[str]:
    sections = ("chains", "directories", "revocation_lists", "receipts")
    verdicts = {case["verdict"] for section in sections for case in VECTORS[section]}
    verdicts |= {step["verdict"] for case in VECTORS["calls"] for step in case["steps"]}
    return verdicts


def test_every_verdict_has_a_vector() -> None:
    assert set(Reason) - _all_verdicts() == set()
    assert _all_verdicts() - {"VALID"} <= set(Reason)


def test_the_specs_verdict_list_is_the_reason_list() -> None:
    spec = (SUITE / "SPEC.md").read_text()
    section = spec.split("\n## Verdicts\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^- `([A-Z_]+)`", section, flags=re.MULTILINE)
    assert sorted(listed) == sorted(Reason) and len(listed) == len(set(listed))
