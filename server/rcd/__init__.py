"""interops.registry.v1: the RCD over gRPC, its establishment cache and Sirene imports."""
