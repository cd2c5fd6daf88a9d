"""The server side of the `interops` command line: serve, db, directory, relations, audit
verify, and the demo data of a first run."""
