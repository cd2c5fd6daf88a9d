"""The calls of interops.mandate.v1.MandateService in the field's words: SEPA mandates entered
once by a company (mandate.manage) and read by each creditor organism (mandate.read)."""

from __future__ import annotations

import time

from interops.mandate.v1 import mandate_pb2 as pb
from interops.operation.v1 import operation_pb2 as op

from clients.calls import Pages, Pause, Steps, Stream, Unary


def _key(creditor: str, reference: str) -> pb.MandateKey:
    return pb.MandateKey(creditor=creditor, reference=reference)


def create_mandate(
    debtor: str,
    creditor: str,
    iban: str,
    bic: str,
    signed_on: str,
    *,
    scheme: pb.Scheme.ValueType = pb.SCHEME_CORE,
    reference: str = "",
    request_id: str = "",
) -> Steps[pb.Mandate]:
    """Enters a mandate (PENDING); an empty reference lets the backbone make one."""
    answer: pb.CreateMandateResponse = yield Unary(pb.CreateMandateRequest(
        debtor=debtor, creditor=creditor, reference=reference, iban=iban, bic=bic,
        scheme=scheme, signed_on=signed_on, request_id=request_id,
    ))  # fmt: skip
    return answer.mandate


def acknowledge_mandate(creditor: str, reference: str) -> Steps[pb.Mandate]:
    """Acknowledges ("acquitte") a signed mandate."""
    answer: pb.AcknowledgeMandateResponse = yield Unary(
        pb.AcknowledgeMandateRequest(key=_key(creditor, reference))
    )
    return answer.mandate


def revoke_mandate(creditor: str, reference: str) -> Steps[pb.Mandate]:
    """Revokes an acknowledged mandate."""
    answer: pb.RevokeMandateResponse = yield Unary(
        pb.RevokeMandateRequest(key=_key(creditor, reference))
    )
    return answer.mandate


def use_mandate(creditor: str, reference: str, declaration: str) -> Steps[pb.Mandate]:
    """Records that the mandate pays a declaration of its creditor."""
    answer: pb.UseMandateResponse = yield Unary(
        pb.UseMandateRequest(key=_key(creditor, reference), declaration=declaration)
    )
    return answer.mandate


def get_mandate(creditor: str, reference: str) -> Steps[pb.Mandate]:
    """One mandate of the caller's perimeter."""
    answer: pb.GetMandateResponse = yield Unary(pb.GetMandateRequest(key=_key(creditor, reference)))
    return answer.mandate


def search_mandates(
    debtor: str,
    *,
    creditor: str = "",
    reference: str = "",
    state: pb.MandateState.ValueType = pb.MANDATE_STATE_UNSPECIFIED,
) -> Pages[pb.Mandate]:
    """The debtor's mandates (a SIREN: its establishments' too), every page."""
    return Pages(pb.SearchMandatesRequest(debtor=debtor, creditor=creditor, reference=reference,
                                          state=state), "mandates")  # fmt: skip


def print_mandate(creditor: str, reference: str) -> Steps[bytes]:
    """The mandate as a PDF."""
    answer: pb.PrintMandateResponse = yield Unary(
        pb.PrintMandateRequest(key=_key(creditor, reference))
    )
    return answer.pdf


def get_creditor_mandate(reference: str) -> Steps[pb.Mandate]:
    """One mandate given to the calling creditor."""
    answer: pb.GetCreditorMandateResponse = yield Unary(
        pb.GetCreditorMandateRequest(reference=reference)
    )
    return answer.mandate


def search_creditor_mandates(
    *,
    debtor: str = "",
    reference: str = "",
    state: pb.MandateState.ValueType = pb.MANDATE_STATE_UNSPECIFIED,
) -> Pages[pb.Mandate]:
    """The mandates given to the calling creditor, every page."""
    return Pages(pb.SearchCreditorMandatesRequest(debtor=debtor, reference=reference,
                                                  state=state), "mandates")  # fmt: skip


def extract_mandates(request_id: str = "") -> Steps[op.Operation]:
    """Starts the extraction of the calling creditor's mandates; its operation."""
    answer: pb.ExtractMandatesResponse = yield Unary(
        pb.ExtractMandatesRequest(request_id=request_id)
    )
    return answer.operation


def get_extraction(name: str) -> Steps[op.Operation]:
    """An extraction of the calling creditor."""
    answer: pb.GetExtractionResponse = yield Unary(pb.GetExtractionRequest(name=name))
    return answer.operation


def wait_extraction(
    name: str, timeout: float = 600.0, poll_seconds: float = 0.2
) -> Steps[op.Operation]:
    """The extraction once done; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer: pb.GetExtractionResponse = yield Unary(pb.GetExtractionRequest(name=name))
        if answer.operation.done:
            return answer.operation
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} is not done after {timeout} s")
        yield Pause(poll_seconds)


def download_extraction(name: str) -> Stream[bytes]:
    """The bytes of a finished extraction's file, chunk after chunk."""
    return Stream(pb.DownloadExtractionRequest(name=name), lambda response: response.chunk)
