"""The audit journal: hash-chained records, signed checkpoints, offline verification."""
