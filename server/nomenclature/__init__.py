"""interops.nomenclature.v1: versioned reference tables."""
