"""The caller's registry.read perimeter, as the RCD's reads apply it.

The Sirene data is public open data, but the RCD as a node serves it is read within the perimeter
of the chain's registry.read grant: organisms usually hold it over everything, a declarant over
its firm's and its clients' companies. A company is in the perimeter when the grant names its
SIREN or one of its SIRETs; an establishment, when the grant names it or its company's SIREN.
Single reads outside are refused before the registry is read, so that a refusal never tells
whether the company or establishment exists; listings are filtered in the store's query.
"""

from __future__ import annotations

from registry.kernel.rights import REGISTRY_READ
from server.rpc.auth_interceptor import current_principal
from server.rpc.errors import PermissionDenied
from token_suite.grants import Scope

_NOTHING = Scope()


def registry_scope() -> Scope:
    """The caller's registry.read perimeter (the auth interceptor let in only holders of it)."""
    return current_principal().grants.get(REGISTRY_READ, _NOTHING)


def covers_company(scope: Scope, siren: str) -> bool:
    """True when the company is in the perimeter: its SIREN, or one of its SIRETs, is named."""
    return (
        scope.everything
        or siren in scope.sirens
        or any(siret[:9] == siren for siret in scope.sirets)
    )


def refused(identifier: str) -> PermissionDenied:
    """The refusal of a company or establishment outside the perimeter."""
    return PermissionDenied("NOT_IN_YOUR_PERIMETER", f"{identifier} is not in your perimeter")
