"""Typed client SDK over the generated stubs, the `interops` command line, a sample organism."""

from clients.client import AsyncClient, Client
from clients.errors import InteropsError

__all__ = ["AsyncClient", "Client", "InteropsError"]
