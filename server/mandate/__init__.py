"""interops.mandate.v1: the SEPA mandate service."""
