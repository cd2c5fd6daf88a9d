"""Tests of habilitation."""
