"""Reference data of the backbone and its storage: the RCD (companies and establishments)."""
