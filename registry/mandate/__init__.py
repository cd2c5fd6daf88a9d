"""SEPA direct debit mandates: creditors, mandates, bank details checks, the bank reference."""
