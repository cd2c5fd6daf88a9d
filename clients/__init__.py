"""Typed client SDK over the generated stubs, the `interops` command line, a sample organism.

`Client`, `AsyncClient` and `InteropsError` are imported on first use, so that the command line
builds its parsers without loading gRPC."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clients.client import AsyncClient, Client
    from clients.errors import InteropsError

__all__ = ["AsyncClient", "Client", "InteropsError"]


def __getattr__(name: str) -> Any:
    """The names of __all__, from their modules when first asked for."""
    if name in ("AsyncClient", "Client"):
        from clients import client

        return getattr(client, name)
    if name == "InteropsError":
        from clients.errors import InteropsError

        return InteropsError
    raise AttributeError(f"module 'clients' has no attribute {name!r}")
