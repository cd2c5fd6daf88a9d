"""The node's address as the clients take it: the default, and the gRPC target it names."""

from __future__ import annotations

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
