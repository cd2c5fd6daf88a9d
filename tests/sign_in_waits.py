"""A stranger's past failures on an identity from the address the tests' calls come from
(loopback, the connection's and the web adapter's client's), counted by the real sign-in limits
an hour ago, so that the test's next failure on it makes every door wait long enough to look at
(16 s) from that address, without the test waiting itself."""

from __future__ import annotations

import time

from sqlalchemy import Engine

from registry.trust.declarant_store import identity_digest
from registry.trust.sign_in_limits import FREE_FAILURES, SignInLimits

LOOPBACK = "127.0.0.1"
# The free failures, then four more (their waits of 1, 2, 4 and 8 s long over): the next one
# makes the identity wait 16 s at that address.
PRIMED = FREE_FAILURES + 4
NEXT_WAIT = 16


def prime(
    engine: Engine, siret: str, last_name: str, first_name: str, source: str = LOOPBACK
) -> bytes:
    """Counts PRIMED failures of a stranger at `source` on the identity, an hour ago; its
    digest."""
    limits = SignInLimits(engine, source_attempts=1_000_000)
    identity = identity_digest(siret, last_name, first_name)
    clock = time.time() - 3600
    counted = asked = 0
    while counted < PRIMED:
        wait = limits.admit(identity, source, now=clock)
        asked += 1
        if wait:
            clock += wait
        else:
            counted += 1
    assert clock < time.time() - 60
    # The address's attempts this minute, which the priming may have counted in, are given
    # back as a success gives them (on another identity): its budget is the test's.
    for _ in range(asked):
        limits.succeeded(b"tests.sign_in_waits", source)
    return identity
