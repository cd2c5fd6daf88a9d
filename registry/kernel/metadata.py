"""The one MetaData every domain's tables are declared on (registry.kernel.schema gathers them)."""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData()
