"""Habilitations: administrators, declarants, portfolios and rights of a company, bulk files,
the declarative services and what a declarant's token carries."""
