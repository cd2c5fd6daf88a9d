"""The mandate tests' world (a node, its callers, two creditors), for every module here."""

from tests.mandate.test_mandates import world  # noqa: F401
