"""The web adapter served beside a test node, in the node's event loop, on a free port."""

from __future__ import annotations

from dataclasses import replace

from server.web.app import WebServer
from tests.running_node import RunningNode


class RunningWeb:
    """The adapter at http(s)://127.0.0.1:<port> until stop()."""

    def __init__(
        self,
        node: RunningNode,
        http_tls_cert: str = "",
        http_tls_key: str = "",
    ) -> None:
        self.node = node
        configured = replace(node.settings, http_address="127.0.0.1:0",
                             http_tls_cert=http_tls_cert, http_tls_key=http_tls_key)  # fmt: skip
        self.server = WebServer(configured, node.node.internal_port, node.node.rights,
                                door_secret=node.node.door_secret)  # fmt: skip
        self.port = node.run(self.server.start())
        scheme = "https" if configured.http_tls_cert else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stops serving."""
        self.node.run(self.server.stop())
