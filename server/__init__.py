"""The backbone node: one package per domain (service, worker, message builders), the RPC
machinery in server.rpc, operator commands in server.cli, the web adapter in server.web, and
the process hosting them (server.node)."""
