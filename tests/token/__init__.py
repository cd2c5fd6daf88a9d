"""Tests of token."""
