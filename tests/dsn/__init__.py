"""Tests of dsn."""
