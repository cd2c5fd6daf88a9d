"""Domain states sent as the contract's enums: a domain enum member and the contract's value share
their name, the contract's carrying its enum's prefix (AIP: DEPOSIT_STATE_ROUTED for ROUTED), so
the mapping is a rule, written here once, not a table per enum."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

V = TypeVar("V", bound=int)


def contract_value(enum: _EnumTypeWrapper[V], name: str) -> V:
    """The value of the contract's `enum` named after a domain member `name`."""
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.DESCRIPTOR.name).upper()
    return enum.Value(f"{prefix}_{name}")
