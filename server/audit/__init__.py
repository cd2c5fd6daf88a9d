"""interops.audit.v1 and the node's audit journal of every exchange."""
