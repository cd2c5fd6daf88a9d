"""The address a call comes from, for the sign-in limits: the peer of the gRPC connection, or,
for a call the node's own web adapter makes for its HTTP client, that client's address.

The adapter says whose call it makes in metadata, with the door secret the node made when it
started (a random value that only the node and the adapter it runs know): the node believes a
forwarded address only with that secret, compared in constant time, so that a caller cannot
pass its guesses off as someone else's to escape its own limit.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import unquote

from server.rpc.handler_wrapping import Context

DOOR_SECRET_METADATA = "interops-door-secret-bin"  # noqa: S105 -- a metadata key
CLIENT_ADDRESS_METADATA = "interops-client-address"


def new_door_secret() -> bytes:
    """A door secret for a node and the adapter it starts."""
    return secrets.token_bytes(32)


def forwarding_metadata(door_secret: bytes, address: str) -> list[tuple[str, str | bytes]]:
    """What the adapter adds to a call it makes for the HTTP client at `address`."""
    if not door_secret or not address:
        return []
    return [(DOOR_SECRET_METADATA, door_secret), (CLIENT_ADDRESS_METADATA, address)]


def peer_host(peer: str) -> str:
    """The host of a gRPC peer ("ipv4:10.0.0.1:5000", "ipv6:[::1]:5000"), without the port,
    which each connection changes."""
    kind, _, rest = unquote(peer).partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return kind or "unknown"  # a Unix socket: one local source


def client_address(context: Context, door_secret: bytes) -> str:
    """The address the call comes from: the one the node's web adapter forwards, when the
    call carries the door secret; the connection's peer otherwise."""
    given: bytes | None = None
    forwarded = ""
    for key, value in context.invocation_metadata() or ():
        if key == DOOR_SECRET_METADATA and isinstance(value, bytes):
            given = value
        elif key == CLIENT_ADDRESS_METADATA and isinstance(value, str):
            forwarded = value
    if door_secret and given is not None and hmac.compare_digest(given, door_secret):
        return forwarded or "unknown"
    return peer_host(context.peer() or "")
