"""Tests of the node as a whole: contracts, configuration, migrations, fuzz, hang-ups, tracing."""
