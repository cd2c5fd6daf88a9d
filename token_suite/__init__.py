"""Signed token chains (the InterOPS "suite jeton"): a pure library, no gRPC, no database."""
