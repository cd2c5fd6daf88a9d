"""The audit journal's hash chain and signed checkpoints, and their offline verification.

Each record's hash is SHA-256 over the previous record's hash and the record's fields in a fixed
order, each length-prefixed (its sequence number and journal included). Every so often the
node signs a checkpoint (sequence number, hash, time) with its root key. A verifier walks the
records in stored order, recomputes every hash and checks every checkpoint, and names the first
record that was altered, removed, inserted or reordered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = bytes(32)
CHECKPOINT_TAG = b"interops-audit-checkpoint-v1\x00"
# The fields a record's hash covers, in the journal's table.
FIELDS = ("journal", "seq", "at", "trace_id", "chain_id", "subject", "organisms", "service",
          "method", "resource", "siret", "outcome", "request_digest", "response_digest",
          "flags")  # fmt: skip


def record_hash(previous: bytes, record: Mapping[str, object]) -> bytes:
    """The hash of a record chained after `previous`: SHA-256 over the previous hash, then each
    of FIELDS in order as its UTF-8 text prefixed by its length (4 bytes, big-endian)."""
    digest = hashlib.sha256(previous)
    for name in FIELDS:
        text = str(record[name]).encode()
        digest.update(len(text).to_bytes(4, "big"))
        digest.update(text)
    return digest.digest()


def checkpoint_input(journal: str, seq: int, digest: bytes, at: int) -> bytes:
    """What a checkpoint's signature covers."""
    return (CHECKPOINT_TAG + journal.encode() + b"\x00" + seq.to_bytes(8, "big") + digest
            + at.to_bytes(8, "big"))  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """The first fault found, or none (`ok`)."""

    ok: bool
    seq: int = 0  # the record (sequence number) at fault
    kind: str = ""  # altered, removed, inserted, reordered, checkpoint
    message: str = ""
    records: int = 0
    checkpoints: int = 0


def verify_journal(
    records: Iterable[Mapping[str, object]],
    checkpoints: Iterable[Mapping[str, object]],
    root_key: Ed25519PublicKey,
    present: Mapping[int, int] | None = None,
) -> Finding:
    """Walks one journal's records in stored order; `records` carry FIELDS plus prev_hash and
    hash, `checkpoints` journal, seq, hash, at, signature; `present` counts the records stored
    under each sequence number (it tells a record moved later from one removed, and an inserted
    record from an altered one)."""
    present = present or {}
    marks = {}
    count_marks = 0
    for mark in checkpoints:
        seq, digest, at = int(str(mark["seq"])), bytes(mark["hash"]), int(str(mark["at"]))  # type: ignore[call-overload]
        try:
            signed = checkpoint_input(str(mark["journal"]), seq, digest, at)
            root_key.verify(bytes(mark["signature"]), signed)  # type: ignore[call-overload]
        except InvalidSignature:
            return Finding(False, seq, "checkpoint", f"the checkpoint at record {seq} is not "
                           "signed by the root key")  # fmt: skip
        marks[seq] = digest
        count_marks += 1
    previous_hash, previous_seq, count = GENESIS, 0, 0
    seen: set[int] = set()
    for record in records:
        seq = int(str(record["seq"]))
        stored = bytes(record["hash"])  # type: ignore[call-overload]
        chained_to = bytes(record["prev_hash"])  # type: ignore[call-overload]
        if record_hash(chained_to, record) != stored:
            return Finding(False, seq, "altered", f"record {seq} was altered: its content does "
                           "not match its hash", count, count_marks)  # fmt: skip
        if seq in seen or seq < previous_seq:
            kind = "inserted" if seq in seen else "reordered"
            return Finding(False, seq, kind, f"record {seq} was {kind}: it comes after record "
                           f"{previous_seq}", count, count_marks)  # fmt: skip
        if seq > previous_seq + 1:
            if previous_seq + 1 in present:
                return Finding(False, seq, "reordered", f"record {seq} was reordered: it comes "
                               f"before record {previous_seq + 1}", count, count_marks)  # fmt: skip
            return Finding(False, previous_seq + 1, "removed", f"records {previous_seq + 1} to "
                           f"{seq - 1} were removed", count, count_marks)  # fmt: skip
        if chained_to != previous_hash:
            return Finding(False, seq, "inserted", f"record {seq} does not follow record "
                           f"{previous_seq}: a record was inserted or rewritten", count,
                           count_marks)  # fmt: skip
        if seq in marks and marks[seq] != stored:
            kind = "inserted" if present.get(seq, 0) > 1 else "altered"
            return Finding(False, seq, kind, f"record {seq} differs from its signed checkpoint "
                           f"({kind}): the journal was rewritten from there or before",
                           count, count_marks)  # fmt: skip
        seen.add(seq)
        previous_hash, previous_seq = stored, seq
        count += 1
    missing = [seq for seq in marks if seq > previous_seq]
    if missing:
        return Finding(False, previous_seq + 1, "removed", f"records after {previous_seq} were "
                       f"removed (a checkpoint covers record {max(missing)})", count,
                       count_marks)  # fmt: skip
    return Finding(True, previous_seq, "", f"{count} records and {count_marks} checkpoints "
                   "verified", count, count_marks)  # fmt: skip
