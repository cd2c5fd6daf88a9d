"""Nomenclatures: versioned reference tables."""
