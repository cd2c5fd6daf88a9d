"""Domain states sent as the contract's enums: a domain enum member and the contract's value share
their name, the contract's carrying its enum's prefix (AIP: DEPOSIT_STATE_ROUTED for ROUTED), so
the mapping is a rule, written here once, not a table per enum."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

V = TypeVar("V", bound=int)


def contract_value(enum: _EnumTypeWrapper[V], name: str) -> V:
    """The value of the contract's `enum` named after a domain member `name`."""
    return enum.Value(f"{_prefix(enum.DESCRIPTOR.name)}_{name}")


@functools.cache
def _prefix(enum_name: str) -> str:
    """DepositState -> DEPOSIT_STATE (computed once per enum: rows are converted one by one)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper()
