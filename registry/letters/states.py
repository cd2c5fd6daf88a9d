"""Where a postal letter stands, and the states the mail room may move it to (no database
here: the command line's parsers read it)."""

from __future__ import annotations

import enum


class LetterState(enum.StrEnum):
    """Where a letter stands; stored as its name."""

    PENDING = "PENDING"
    PRINTED = "PRINTED"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    RETURNED = "RETURNED"


# The states `track` may move a letter to, from each state. A letter is tracked only once
# printed; DELIVERED and RETURNED are final. SENT to SENT corrects the tracking number.
TRANSITIONS: dict[LetterState, frozenset[LetterState]] = {
    LetterState.PENDING: frozenset(),
    LetterState.PRINTED: frozenset({LetterState.SENT, LetterState.DELIVERED, LetterState.RETURNED}),
    LetterState.SENT: frozenset({LetterState.SENT, LetterState.DELIVERED, LetterState.RETURNED}),
    LetterState.DELIVERED: frozenset(),
    LetterState.RETURNED: frozenset(),
}
# The states `interops letters track` may record.
TRACKED = (LetterState.SENT, LetterState.DELIVERED, LetterState.RETURNED)
