"""A stranger's past failures on an identity, counted by the real sign-in limits an hour ago, so
that the test's next failure on it makes every door wait long enough to look at (16 s), without
the test waiting itself."""

from __future__ import annotations

import time

from sqlalchemy import Engine

from registry.trust.declarant_store import identity_digest
from registry.trust.sign_in_limits import FREE_FAILURES, SignInLimits

STRANGER = "198.51.100.7"
# The free failures, then four more (their waits of 1, 2, 4 and 8 s long over): the next one
# makes the identity wait 16 s.
PRIMED = FREE_FAILURES + 4
NEXT_WAIT = 16


def prime(engine: Engine, siret: str, last_name: str, first_name: str) -> bytes:
    """Counts PRIMED failures of a stranger on the identity, an hour ago; its digest."""
    limits = SignInLimits(engine)
    identity = identity_digest(siret, last_name, first_name)
    clock = time.time() - 3600
    counted = 0
    while counted < PRIMED:
        wait = limits.admit(identity, STRANGER, now=clock)
        if wait:
            clock += wait
        else:
            counted += 1
    assert clock < time.time() - 60
    return identity
