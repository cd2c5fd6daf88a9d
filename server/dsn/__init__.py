"""interops.dsn.v1: deposits, the pipeline after an AEE (validation, routing), deliveries to
organisms and their returns."""
