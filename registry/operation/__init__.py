"""Long-running operations: state, progress, result and error."""
