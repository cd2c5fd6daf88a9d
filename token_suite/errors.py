"""Why a chain, a proof or a directory snapshot was refused: one exception with a precise reason."""

from __future__ import annotations


class TokenError(Exception):
    """A refused token, proof or snapshot.

    `reason` is an UPPER_SNAKE code (the list is in SPEC.md, "Verdicts"); `block` is the index of
    the block at fault, or None when the fault is not in one block.
    """

    def __init__(self, reason: str, message: str, block: int | None = None) -> None:
        where = f" (block {block})" if block is not None else ""
        super().__init__(f"{reason}: {message}{where}")
        self.reason = reason
        self.message = message
        self.block = block
