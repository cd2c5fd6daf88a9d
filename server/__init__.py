"""The backbone node: one module per contract, the interceptors, and the process hosting them."""
