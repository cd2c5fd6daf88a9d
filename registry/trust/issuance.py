"""The rules of issuing and extending chains: which profiles each kind of subject gets, how long
a chain of a profile lives, which grants may be asked for, and which chains the backbone extends
as the identity provider."""

from __future__ import annotations

from collections.abc import Sequence

from interops.token.v1 import token_pb2

from token_suite import profiles
from token_suite.errors import TokenError
from token_suite.grants import Grants, grants_from, widening

# The profiles of the chains each kind of subject (its subject's prefix) gets.
PROFILES_OF = {
    "declarant": frozenset({profiles.PORTAL, profiles.NAVIGATION}),
    "organism": frozenset({profiles.APPLICATION}),
}


class IssueRefused(Exception):
    """A chain that may not be issued or extended: `reason` is a stable code, `message` why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def check_profile(subject: str, profile: int) -> None:
    """Refuses a profile the subject's kind does not get."""
    kind = subject.split(":", maxsplit=1)[0]
    allowed = PROFILES_OF[kind]
    if profile not in allowed:
        names = " or ".join(sorted(profiles.name(p) for p in allowed))
        raise IssueRefused("PROFILE_NOT_ALLOWED", f"a {kind} gets {names} chains")


def check_lifetime(profile: int, lifetime_seconds: int) -> None:
    """Refuses a lifetime longer than the profile's."""
    longest = profiles.MAX_LIFETIME[profile]
    if lifetime_seconds > longest:
        name = profiles.name(profile)
        raise IssueRefused("LIFETIME_TOO_LONG", f"a {name} chain lives at most {longest} s")


def asked_grants(held: Grants, asked: Sequence[token_pb2.Grant]) -> Grants:
    """The grants asked for, which must be covered by those held; all held when none asked."""
    if not asked:
        if not held:
            raise IssueRefused("NO_GRANTS", "the subject holds no right")
        return held
    try:
        wanted = grants_from(asked)
    except TokenError as error:
        raise IssueRefused("BAD_GRANT", error.message) from None
    right = widening(held, wanted)
    if right is not None:
        raise IssueRefused("GRANT_NOT_HELD", f"the subject does not hold {right} so widely")
    return wanted


def check_extendable(
    holder_organism: str, holder_public_key: bytes, profile: int, identity_provider: str
) -> None:
    """Refuses to append a hop as the identity provider to a chain other than a portal chain
    held by one of its sessions (a holder naming a session key of the identity provider; the
    caller has checked the session's proof)."""
    session = holder_organism == identity_provider and bool(holder_public_key)
    if not session or profile != profiles.PORTAL:
        raise IssueRefused(
            "NOT_HOLDER", "the backbone appends hops only to portal chains of its sessions"
        )


def declarant_subject(declarant_id: int) -> str:
    """The subject a declarant's chains name, which its cutoffs name too."""
    return f"declarant:{declarant_id}"
