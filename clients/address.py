"""The node's address as the clients take it: the default, the gRPC target it names, and a
channel to it (over TLS when given credentials)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `interops --help` loads no grpc
    import grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"
# gRPC's own name schemes (unix:/path, dns:///host:port...): taken as they are.
_SCHEMES = ("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "vsock:")


def channel_target(address: str) -> str:
    """The gRPC target of an address (grpc://host:port is host:port)."""
    return address.removeprefix("grpc://")


def address_problem(address: str) -> str:
    """What is wrong with an address, in words ("" when it can name a node): host:port, with a
    port number, or one of gRPC's own targets (unix:/path, dns:///host:port)."""
    target = channel_target(address)
    if target.startswith(_SCHEMES):
        return ""
    host, colon, port = target.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "is no host:port (e.g. 127.0.0.1:50051)"
    if any(char.isspace() or char in "/?#@" for char in host):
        return "has a host name that cannot be one"
    return ""


def open_channel(
    address: str,
    tls: grpc.ChannelCredentials | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A synchronous channel to the node at `address`: TLS with `tls`, else plaintext."""
    import grpc

    target = channel_target(address)
    if tls is not None:
        return grpc.secure_channel(target, tls, options)
    return grpc.insecure_channel(target, options)
