"""interops.operation.v1: reading and following long-running operations."""
