"""Why a chain, a proof, a directory snapshot or a revocation list was refused: one exception
with a precise reason, drawn from one closed list (SPEC.md, "Verdicts")."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Every verdict a verifier of this library can return but VALID (SPEC.md lists the same)."""

    MALFORMED = "MALFORMED"
    TOO_LARGE = "TOO_LARGE"
    TOO_MANY_BLOCKS = "TOO_MANY_BLOCKS"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    BAD_KEY = "BAD_KEY"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    UNTRUSTED_ROOT = "UNTRUSTED_ROOT"
    WRONG_SIGNER = "WRONG_SIGNER"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    KEY_NOT_VALID = "KEY_NOT_VALID"
    HOLDER_KEY_REQUIRED = "HOLDER_KEY_REQUIRED"
    LIFETIME_TOO_LONG = "LIFETIME_TOO_LONG"
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    CHAIN_ID_CHANGED = "CHAIN_ID_CHANGED"
    SUBJECT_CHANGED = "SUBJECT_CHANGED"
    TOO_MANY_HOPS = "TOO_MANY_HOPS"
    HOPS_NOT_DECREASING = "HOPS_NOT_DECREASING"
    PROFILE_WIDENED = "PROFILE_WIDENED"
    AUDIENCE_WIDENED = "AUDIENCE_WIDENED"
    EXPIRY_EXTENDED = "EXPIRY_EXTENDED"
    GRANTS_WIDENED = "GRANTS_WIDENED"
    REVOKED = "REVOKED"
    REVOCATIONS_STALE = "REVOCATIONS_STALE"
    WRONG_AUDIENCE = "WRONG_AUDIENCE"
    WRONG_HOLDER = "WRONG_HOLDER"
    PROOF_REQUIRED = "PROOF_REQUIRED"
    BAD_PROOF = "BAD_PROOF"
    STALE_PROOF = "STALE_PROOF"
    REPLAYED = "REPLAYED"


class TokenError(Exception):
    """A refused token, proof, snapshot or list.

    `reason` is a Reason (a string too: `error.reason == "EXPIRED"` holds); `block` is the index
    of the block at fault, or None when the fault is not in one block.
    """

    def __init__(self, reason: Reason | str, message: str, block: int | None = None) -> None:
        # Reason(...) refuses a reason outside the list: the list stays the whole truth.
        self.reason = Reason(reason)
        where = f" (block {block})" if block is not None else ""
        super().__init__(f"{self.reason}: {message}{where}")
        self.message = message
        self.block = block
