"""The node's traces: its OTLP collector for organisms' spans, the keeper of its own spans, the
retention purge, and interops.trace.v1.TraceService for operators."""
