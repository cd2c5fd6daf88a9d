"""interops.habilitation.v1 and the worker applying bulk habilitation files."""
