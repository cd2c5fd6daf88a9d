"""The REST declination's OpenAPI document tells each operation from the contracts' comments
(summary, description, then the right it needs or that it is public), and the messages and
fields too; the comments come from a file that generation writes and that regenerating gives
again byte for byte. Every failure a REST caller can cause under /v1/ answers a google.rpc.Status
as JSON, never a page or bare text: each case below on a real node and web adapter over HTTP."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from server.web.openapi import comments, summary_of
from server.web.rest_gateway import MAX_BODY, rest_methods
from tests.running_node import RunningNode
from tests.running_web import RunningWeb
from tests.web import test_rest_gateway as rest
from tests.web_timeouts import HTTP_TIMEOUT
from tools.generate_protos import COMMENTS, comments_file

# The running node and adapter, and the document it serves: test_rest_gateway's fixtures.
web = rest.web
document = rest.document

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = rest.REGISTRY
GET_ESTABLISHMENT = f"/v1/{REGISTRY}/GetEstablishment"
WATCH_OPERATION = "/v1/interops.operation.v1.OperationService/WatchOperation"


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        yield path, item["post"]


def _proto_comment(proto: str, rpc: str) -> str:
    """The comment lines right above `rpc <name>(` in a .proto file, read here independently
    of the generator."""
    lines = (ROOT / "protos" / proto).read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"rpc {rpc}("))
    comment: list[str] = []
    while lines[at - 1].strip().startswith("//"):
        at -= 1
        comment.insert(0, lines[at].strip().removeprefix("//").strip())
    return " ".join(comment)


def _status(answer: httpx.Response, http_status: int, reason: str) -> dict[str, Any]:
    """The answer is a google.rpc.Status as JSON with this HTTP status and ErrorInfo reason."""
    assert answer.status_code == http_status, answer.text
    assert answer.headers["content-type"] == "application/json", answer.headers
    body: dict[str, Any] = answer.json()
    assert isinstance(body["code"], int) and body["message"]
    assert reason in [d.get("reason") for d in body["details"]], body
    return body


def _proven(node: RunningNode, path: str) -> dict[str, str]:
    """An operator's chain for the registry and operations, with its proof for `path`."""
    services = [REGISTRY, "interops.operation.v1.OperationService"]
    return rest._proven(node.credentials(audience=services).token(), node.operator, path)


def _raw(web: RunningWeb, request_line: str, body: bytes = b"") -> tuple[int, str, bytes]:
    """Sends one HTTP/1.1 request as written, its path untouched by any client library, and
    returns its status, content type and body."""
    request = (
        f"{request_line} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", web.port), timeout=30) as connection:
        connection.sendall(request.encode() + body)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, content = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers.get("content-type", ""), content


def test_every_operation_has_its_rpc_comment_and_says_its_access(document: dict[str, Any]) -> None:
    validate(document)
    known = comments()
    assert set(document["paths"]) == set(rest_methods())
    for path, operation in _operations(document):
        comment = known[operation["operationId"]]
        assert operation["summary"] == summary_of(comment) != "", path
        right = operation.get("x-interops-right")
        access = (f"Needs a chain granting the {right} right" if right
                  else "Public: needs no token chain.")  # fmt: skip
        assert operation["description"].startswith(comment + "\n\n"), path
        assert access in operation["description"].removeprefix(comment), path
        assert operation["security"] == ([{"chain": [right], "proof": []}] if right else [])
    tags = {tag["name"]: tag.get("description", "") for tag in document["tags"]}
    assert tags["interops.dsn.v1.DepositService"].startswith("Declarants deposit DSNs")


def test_a_summary_is_the_first_sentence_of_the_proto_comment(document: dict[str, Any]) -> None:
    written = _proto_comment("interops/dsn/v1/dsn.proto", "SubmitDeposit")
    submit = document["paths"]["/v1/interops.dsn.v1.DepositService/SubmitDeposit"]["post"]
    assert submit["summary"] == "Deposits a file: a header, then its bytes in chunks."
    assert written.startswith(submit["summary"] + " ")
    assert submit["description"] == (f"{written}\n\nNeeds a chain granting the dsn.deposit right, "
                                     "with a proof by the key its last block names.")  # fmt: skip
    public = document["paths"]["/v1/interops.token.v1.TokenService/GetDirectory"]["post"]
    assert public["summary"] == _proto_comment("interops/token/v1/token_service.proto",
                                               "GetDirectory")  # fmt: skip
    assert public["description"].endswith("\n\nPublic: needs no token chain.")


def test_messages_and_fields_are_described_from_their_comments(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    delivery = schemas["interops.dsn.v1.Delivery"]
    assert delivery["description"] == "One organism's part of a deposit."
    assert delivery["properties"]["attempts"]["description"] == "How many times it was leased."
    # A message field keeps its reference beside its description; an enum stays by name.
    state = delivery["properties"]["state"]
    assert "DELIVERY_STATE_ACKNOWLEDGED" in state["oneOf"][0]["enum"]
    upload = document["paths"]["/v1/interops.dsn.v1.DepositService/SubmitDeposit"]["post"]
    request_id = next(p for p in upload["parameters"] if p["name"] == "requestId")
    assert "same request id" in request_id["description"]


def test_the_comments_file_is_what_generation_writes() -> None:
    generated = comments_file()
    assert COMMENTS.read_bytes() == generated == comments_file()
    written = json.loads(generated)
    assert written["interops.dsn.v1.DepositService.SubmitDeposit"].startswith(
        _proto_comment("interops/dsn/v1/dsn.proto", "SubmitDeposit")
    )
    assert all(f"{m.full_name}" in written for m, _ in rest_methods().values())


def test_a_malformed_json_body(web: RunningWeb, node: RunningNode) -> None:
    answer = httpx.post(
        web.url + GET_ESTABLISHMENT,
        content=b'{"siret": ',
        headers={**_proven(node, GET_ESTABLISHMENT), "Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT,
    )
    _status(answer, 400, "BAD_JSON")


def test_a_body_not_sent_as_json(web: RunningWeb, node: RunningNode) -> None:
    for media in ("text/plain", "application/x-www-form-urlencoded", "text/html; charset=utf-8"):
        answer = httpx.post(web.url + GET_ESTABLISHMENT, content=json.dumps({"siret": rest.SIRET}),
                            headers={**_proven(node, GET_ESTABLISHMENT),
                                     "Content-Type": media}, timeout=HTTP_TIMEOUT)  # fmt: skip
        body = _status(answer, 415, "BAD_JSON")
        assert "application/json" in body["message"]
    charset = httpx.post(
        web.url + GET_ESTABLISHMENT,
        content=json.dumps({"siret": rest.SIRET}),
        headers={
            **_proven(node, GET_ESTABLISHMENT),
            "Content-Type": "application/json; charset=utf-8",
        },
        timeout=HTTP_TIMEOUT,
    )
    assert charset.status_code == 200, charset.text


def test_a_body_too_large(web: RunningWeb) -> None:
    big = b'{"siret": "' + b"1" * MAX_BODY + b'"}'
    declared = httpx.post(web.url + GET_ESTABLISHMENT, content=big,
                          headers={"Content-Type": "application/json"}, timeout=60)  # fmt: skip
    _status(declared, 413, "BODY_TOO_LARGE")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        yield from (big[at : at + 65536] for at in range(0, len(big), 65536))

    chunked = httpx.post(web.url + GET_ESTABLISHMENT, content=chunks(), timeout=60)
    _status(chunked, 413, "BODY_TOO_LARGE")


def test_an_unknown_field(web: RunningWeb, node: RunningNode) -> None:
    answer = httpx.post(web.url + GET_ESTABLISHMENT, json={"siret": rest.SIRET, "sirn": "1"},
                        headers=_proven(node, GET_ESTABLISHMENT), timeout=HTTP_TIMEOUT)  # fmt: skip
    body = _status(answer, 400, "BAD_JSON")
    assert "sirn" in body["message"]


def test_a_wrong_type(web: RunningWeb, node: RunningNode) -> None:
    for wrong in (b'{"siret": 12345678901234}', b"[]", b'"siret"', b"null", b"7"):
        answer = httpx.post(
            web.url + GET_ESTABLISHMENT,
            content=wrong,
            headers=_proven(node, GET_ESTABLISHMENT),
            timeout=HTTP_TIMEOUT,
        )
        _status(answer, 400, "BAD_JSON")


def test_an_empty_body(web: RunningWeb, node: RunningNode) -> None:
    answer = httpx.post(web.url + GET_ESTABLISHMENT, content=b"",
                        headers=_proven(node, GET_ESTABLISHMENT), timeout=HTTP_TIMEOUT)  # fmt: skip
    body = _status(answer, 400, "INVALID_ARGUMENT")
    violations = [v for d in body["details"] for v in d.get("fieldViolations", [])]
    assert [v["field"] for v in violations] == ["siret"]


def test_another_http_method_than_post(web: RunningWeb) -> None:
    for verb in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
        answer = httpx.request(verb, web.url + GET_ESTABLISHMENT, timeout=HTTP_TIMEOUT)
        body = _status(answer, 405, "METHOD_NOT_ALLOWED")
        assert answer.headers["allow"] == "POST" and verb in body["message"]
    head = httpx.head(web.url + GET_ESTABLISHMENT)  # a HEAD answer has no body: its headers
    assert head.status_code == 405 and head.headers["content-type"] == "application/json"
    assert head.headers["allow"] == "POST"
    document = httpx.put(f"{web.url}/v1/openapi.json", timeout=HTTP_TIMEOUT)
    _status(document, 405, "METHOD_NOT_ALLOWED")
    assert set(re.split(r",\s*", document.headers["allow"])) == {"GET", "HEAD"}


def test_a_path_traversal_attempt(web: RunningWeb) -> None:
    for path in ("/v1/../../etc/passwd", "/v1/%2e%2e/%2e%2e%2fetc%2fpasswd",
                 "/v1/..%2f..%2fserver%2fweb%2fapp.py", f"/v1/{REGISTRY}/..%2fGetCompany",
                 "/v1/../static/style.css"):  # fmt: skip
        for verb in ("GET", "POST"):
            status, media, content = _raw(web, f"{verb} {path}", b"{}")
            assert (status, media) == (404, "application/json"), (verb, path, content[:200])
            reasons = [d.get("reason") for d in json.loads(content)["details"]]
            assert reasons == ["NO_SUCH_METHOD"], (verb, path)


def test_a_stream_refused_before_its_first_line(web: RunningWeb, node: RunningNode) -> None:
    unknown = httpx.post(web.url + WATCH_OPERATION, json={"name": "operations/" + "0" * 32},
                         headers=_proven(node, WATCH_OPERATION), timeout=30)  # fmt: skip
    _status(unknown, 404, "OPERATION_NOT_FOUND")
    malformed = httpx.post(web.url + WATCH_OPERATION, content=b"{name:",
                           headers=_proven(node, WATCH_OPERATION), timeout=30)  # fmt: skip
    _status(malformed, 400, "BAD_JSON")
    large = httpx.post(web.url + WATCH_OPERATION, content=b" " * (MAX_BODY + 1),
                       headers=_proven(node, WATCH_OPERATION), timeout=60)  # fmt: skip
    _status(large, 413, "BODY_TOO_LARGE")


@pytest.mark.parametrize("path", ["/v1/", "/v1/nowhere", "/v1/a/b/c"])
def test_a_path_no_method_has(web: RunningWeb, path: str) -> None:
    _status(httpx.post(web.url + path, json={}, timeout=HTTP_TIMEOUT), 404, "NO_SUCH_METHOD")
