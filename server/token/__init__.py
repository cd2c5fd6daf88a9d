"""interops.token.v1 and the node's side of the token suite (keys, directory, verifier)."""
