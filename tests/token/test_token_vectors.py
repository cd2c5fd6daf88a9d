"""The committed test vectors, checked with nothing but the vectors file, as an implementation
in another language would check itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from interops.token.v1 import token_pb2 as t

from token_suite.directory import TrustDirectory
from token_suite.errors import TokenError
from token_suite.verify import Verifier

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "token_suite" / "vectors" / "v1.json").read_text()
)


def _verifier() -> Verifier:
    directory = TrustDirectory.build(
        [t.Organism(code=o["code"], kind=t.OrganismKind.Value(o["kind"]))
         for o in VECTORS["organisms"]],
        [t.PublicKey(key_id=k["key_id"], organism=k["organism"],
                     public_key=bytes.fromhex(k["public_key"]), valid_from=k["valid_from"],
                     valid_until=k["valid_until"]) for k in VECTORS["keys"]],
    )  # fmt: skip
    roots = frozenset(t.OrganismKind.Value(kind) for kind in VECTORS["root_kinds"])
    return Verifier(directory, leeway=VECTORS["leeway"], root_kinds=roots,
                    clock=lambda: VECTORS["now"])  # fmt: skip


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda case: case["name"])
def test_chain_vector(case: dict[str, Any]) -> None:
    token = bytes.fromhex(case["token"])
    if case["verdict"] == "VALID":
        _verifier().verify(token, case["audience"])
        return
    with pytest.raises(TokenError) as refused:
        _verifier().verify(token, case["audience"])
    assert (refused.value.reason, refused.value.block) == (case["verdict"], case["block"])


@pytest.mark.parametrize("case", VECTORS["proofs"], ids=lambda case: case["name"])
def test_proof_vector(case: dict[str, Any]) -> None:
    verifier = _verifier()
    chain = verifier.verify(bytes.fromhex(case["token"]), case["audience"])

    def check() -> None:
        verifier.check_proof(
            bytes.fromhex(case["proof"]), holder=chain.holder, method=case["method"],
            audience=case["audience"], token_hash=chain.token_hash,
        )  # fmt: skip

    if case["verdict"] == "VALID":
        check()
    else:
        with pytest.raises(TokenError, match=case["verdict"]):
            check()


def test_the_vectors_cover_valid_and_refused_tokens() -> None:
    verdicts = {case["verdict"] for case in VECTORS["cases"]}
    assert "VALID" in verdicts and len(verdicts) >= 10
