"""The DSN: the norm as data, reading, the deposit's quick scan, validation (DSN-VAL), routing
of each organism's share, deposit storage with its outbox and returns, synthetic files."""
