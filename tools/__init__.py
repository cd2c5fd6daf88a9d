"""Developer tools: code generation, the pinned buf CLI, checks (not installed)."""
