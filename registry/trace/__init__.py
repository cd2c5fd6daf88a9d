"""Traces: the spans of the node and of the organisms, kept for a retention period so that an
operator sees one exchange whole."""
