"""The REST declination against its OpenAPI document, through a real node and web adapter: the
document is valid OpenAPI 3.1 and names every unary RPC; answers and errors match its schemas;
chains travel in the Authorization header, always with a proof by their holder's key in the
interops-proof header, and are checked by the node as on gRPC."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from interops.token.v1 import token_pb2
from openapi_spec_validator import validate

from clients.client import Client
from registry.dsn.synth import DEMO_COMPANY, generate
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.trust.declarant_store import DeclarantStore
from server.web.rest_gateway import rest_methods, unary_methods
from tests.registry_rows import in_registry
from tests.running_node import RunningNode
from tests.running_web import RunningWeb
from tests.web_timeouts import HTTP_TIMEOUT
from token_suite.chain import Signer, session_signer, sign_proof
from token_suite.keys import public_bytes
from token_suite.wire import service_of, to_text

REGISTRY = "interops.registry.v1.RegistryService"
SIRET = siret_of(siren_at(80), 1)


@pytest.fixture(scope="module")
def web(node: RunningNode) -> Iterator[RunningWeb]:
    in_registry(node.node.engine, [SIRET])
    running = RunningWeb(node)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def document(web: RunningWeb) -> dict[str, Any]:
    answer = httpx.get(f"{web.url}/v1/openapi.json", timeout=HTTP_TIMEOUT)
    assert answer.status_code == 200
    found: dict[str, Any] = answer.json()
    return found


def _check(document: dict[str, Any], path: str, status: int, body: Any) -> None:
    """The body is what the document says this operation answers with this status."""
    responses = document["paths"][path]["post"]["responses"]
    schema = responses[str(status) if str(status) in responses else "default"]
    wanted = schema["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**wanted, "components": document["components"]},
                        cls=jsonschema.Draft202012Validator)  # fmt: skip


def _bearer(token: bytes) -> dict[str, str]:
    return {"Authorization": f"Bearer {to_text(token)}"}


def _proven(token: bytes, holder: Signer, path: str) -> dict[str, str]:
    """The headers of one REST call: the chain, and a fresh proof by its holder over the gRPC
    path the REST path stands for."""
    method = path.removeprefix("/v1")
    proof = sign_proof(holder, method, service_of(method), token)
    return {**_bearer(token), "interops-proof": to_text(proof)}


def _operator_chain(node: RunningNode) -> bytes:
    """An APPLICATION chain of the operator (read right), held by its key."""
    return node.credentials(audience=[REGISTRY]).token()


def test_the_document_is_valid_and_names_every_unary_rpc(document: dict[str, Any]) -> None:
    validate(document)
    assert set(document["paths"]) == set(rest_methods())
    assert set(unary_methods()) < set(rest_methods())
    assert f"/v1/{REGISTRY}/GetEstablishment" in document["paths"]
    upload = document["paths"]["/v1/interops.dsn.v1.DepositService/SubmitDeposit"]["post"]
    assert "application/octet-stream" in upload["requestBody"]["content"]
    assert {p["name"] for p in upload["parameters"]} == {"requestId", "fileName"}
    watch = document["paths"]["/v1/interops.dsn.v1.DepositService/WatchDeposit"]["post"]
    assert "application/x-ndjson" in watch["responses"]["200"]["content"]
    public = document["paths"]["/v1/interops.token.v1.TokenService/GetDirectory"]["post"]
    assert public["security"] == []
    imports = document["paths"][f"/v1/{REGISTRY}/ImportStock"]["post"]
    assert imports["x-interops-right"] == "registry.import"
    assert imports["security"] == [{"chain": ["registry.import"], "proof": []}]
    assert "registry.import" in imports["description"]
    proof = document["components"]["securitySchemes"]["proof"]
    assert (proof["type"], proof["in"], proof["name"]) == ("apiKey", "header", "interops-proof")


def test_calls_answer_as_the_document_says(
    web: RunningWeb, node: RunningNode, document: dict[str, Any]
) -> None:
    path = f"/v1/{REGISTRY}/GetEstablishment"
    token = _operator_chain(node)
    answer = httpx.post(
        web.url + path,
        json={"siret": SIRET},
        headers=_proven(token, node.operator, path),
        timeout=HTTP_TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    _check(document, path, 200, answer.json())
    assert answer.json()["establishment"]["siret"] == SIRET
    directory = "/v1/interops.token.v1.TokenService/GetDirectory"
    public = httpx.post(web.url + directory, json={}, timeout=HTTP_TIMEOUT)
    assert public.status_code == 200
    _check(document, directory, 200, public.json())
    assert public.json()["directory"]["payload"]  # bytes, in base64


def test_errors_are_rich_statuses_with_the_http_status_of_their_code(
    web: RunningWeb, node: RunningNode, document: dict[str, Any]
) -> None:
    path = f"/v1/{REGISTRY}/GetEstablishment"
    token = _operator_chain(node)
    stranger = node.organism("REST-STRANGER")

    def proven() -> dict[str, str]:
        return _proven(token, node.operator, path)

    post = functools.partial(httpx.post, timeout=HTTP_TIMEOUT)
    cases = [
        (post(web.url + path, json={"siret": SIRET}), 401, "TOKEN_MISSING"),
        (post(web.url + path, json={"siret": SIRET}, headers=_bearer(token)), 401,
         "PROOF_REQUIRED"),
        (post(web.url + path, json={"siret": SIRET},
                    headers=_proven(token, stranger, path)), 401, "BAD_PROOF"),
        (post(web.url + path, json={"siret": "123"}, headers=proven()), 400,
         "INVALID_ARGUMENT"),
        (post(web.url + path, content=b"{not json", headers=proven()), 400,
         "BAD_JSON"),
        (post(web.url + path, json={"siret": SIRET},
                    headers={"Authorization": "Basic abc"}), 401, "BAD_AUTHORIZATION"),
        (post(web.url + path, json={"siret": siret_of(siren_at(81), 1)},
                    headers=proven()), 404, "ESTABLISHMENT_NOT_FOUND"),
    ]  # fmt: skip
    for answer, status, reason in cases:
        assert answer.status_code == status, (reason, answer.text)
        body = answer.json()
        _check(document, path, status, body)
        reasons = [d.get("reason") for d in body["details"]]
        assert reason in reasons or reason == "INVALID_ARGUMENT", (reason, body)
    invalid = cases[3][0].json()
    assert any("fieldViolations" in d for d in invalid["details"])  # BadRequest, field named
    missing = httpx.post(f"{web.url}/v1/{REGISTRY}/NoSuchMethod", json={}, timeout=HTTP_TIMEOUT)
    assert missing.status_code == 404
    # A missing chain is told in HTTP terms; a GET, or a path no route takes, answers JSON too.
    assert "Authorization: Bearer" in cases[0][0].json()["message"]
    got = httpx.get(web.url + path, timeout=HTTP_TIMEOUT)
    assert got.status_code == 405 and got.headers["allow"] == "POST"
    assert [d.get("reason") for d in got.json()["details"]] == ["METHOD_NOT_ALLOWED"]
    nowhere = httpx.get(f"{web.url}/v1/nowhere", timeout=HTTP_TIMEOUT)
    assert nowhere.status_code == 404 and nowhere.headers["content-type"] == "application/json"


def test_a_deposit_over_rest_and_its_state_as_an_ndjson_stream(
    web: RunningWeb, node: RunningNode, document: dict[str, Any]
) -> None:
    firm = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
    declarants = DeclarantStore(node.node.engine)
    if not declarants.exists(firm, "Rest", "Ana"):
        declarants.create(firm, "Rest", "Ana", "rest password",
                          [("dsn.deposit", DEMO_COMPANY.siren)])  # fmt: skip
    session = session_signer("")  # the REST caller's own holder key
    holder = token_pb2.Party(public_key=public_bytes(session.key))
    with Client(node.address) as anonymous:
        token = anonymous.sign_in(firm, "Rest", "Ana", "rest password", holder=holder,
                                  audience=["interops.dsn.v1.DepositService"]).token  # fmt: skip
    node.encryption_keys()  # the organisms' keys the shares are sealed to: routing needs them
    content = b"".join(generate(30, order=801))  # several upload chunks of the HTTP body
    path = "/v1/interops.dsn.v1.DepositService/SubmitDeposit"
    submitted = httpx.post(
        web.url + path,
        content=content,
        headers=_proven(token, session, path),
        params={"fileName": "rest.dsn", "requestId": "rest-1"},
        timeout=HTTP_TIMEOUT,
    )
    assert submitted.status_code == 200, submitted.text
    _check(document, path, 200, submitted.json())
    deposit = submitted.json()["deposit"]
    assert deposit["receipt"] == "RECEIPT_AEE" and deposit["fileName"] == "rest.dsn"
    assert deposit["size"] == str(len(content))
    watch = "/v1/interops.dsn.v1.DepositService/WatchDeposit"
    states = []
    with httpx.stream("POST", web.url + watch, json={"id": deposit["id"]},
                      headers=_proven(token, session, watch), timeout=60) as stream:  # fmt: skip
        assert stream.headers["content-type"].startswith("application/x-ndjson")
        for line in stream.iter_lines():
            states.append(json.loads(line)["deposit"]["state"])
            if states[-1] == "DEPOSIT_STATE_ROUTED":
                break  # the stream goes on until organisms acknowledge: hang up
    assert states[-1] == "DEPOSIT_STATE_ROUTED" and len(states) == len(set(states))
    refused = httpx.post(web.url + watch, json={"id": deposit["id"]}, timeout=HTTP_TIMEOUT)
    assert refused.status_code == 401  # no chain: refused before the stream starts
