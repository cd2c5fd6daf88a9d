"""Tests of rcd."""
