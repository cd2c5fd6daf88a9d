"""The three uses of a chain and what each allows: longest lifetime, and the order in which a
chain may move from one to another (a portal session may become an application call or a
navigation, never the reverse)."""

from __future__ import annotations

from interops.token.v1 import token_pb2

PORTAL = token_pb2.PROFILE_PORTAL
APPLICATION = token_pb2.PROFILE_APPLICATION
NAVIGATION = token_pb2.PROFILE_NAVIGATION

MAX_LIFETIME: dict[int, int] = {PORTAL: 3600, APPLICATION: 300, NAVIGATION: 60}
_RANK: dict[int, int] = {PORTAL: 0, APPLICATION: 1, NAVIGATION: 2}


def may_follow(parent: int, child: int) -> bool:
    """True when a block of profile `child` may follow one of profile `parent`."""
    return _RANK[child] >= _RANK[parent]


def name(profile: int) -> str:
    """ "PORTAL", "APPLICATION" or "NAVIGATION"."""
    return token_pb2.Profile.Name(profile).removeprefix("PROFILE_")  # type: ignore[arg-type]
