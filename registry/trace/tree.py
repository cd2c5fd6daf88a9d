"""A trace's spans as a tree: each span after its parent, siblings by start time."""

from __future__ import annotations

from collections.abc import Sequence

from registry.trace.store import NODE, StoredSpan


def tree_order(spans: Sequence[StoredSpan]) -> list[tuple[StoredSpan, int]]:
    """The spans in depth-first order with the depth of each; a span whose parent is not among
    them is a root. A span hangs under its parent as its own reporter sent it, else as the node
    did, else as the first other reporter: an organism that sends a span with another's id can
    not take that one's children."""
    by_id: dict[tuple[str, str], StoredSpan] = {}
    anyone: dict[str, StoredSpan] = {}
    for span in spans:
        by_id.setdefault((span.reported_by, span.span_id), span)
        anyone.setdefault(span.span_id, span)
    children: dict[int, list[StoredSpan]] = {}
    roots: list[StoredSpan] = []
    for span in spans:
        parent = (
            by_id.get((span.reported_by, span.parent_id))
            or by_id.get((NODE, span.parent_id))
            or anyone.get(span.parent_id)
            if span.parent_id
            else None
        )
        if parent is None or parent is span:
            roots.append(span)
        else:
            children.setdefault(id(parent), []).append(span)
    ordered: list[tuple[StoredSpan, int]] = []
    seen: set[int] = set()
    stack = [(span, 0) for span in sorted(roots, key=_start, reverse=True)]
    while stack:
        span, depth = stack.pop()
        if id(span) in seen:  # a cycle of made-up parent ids shows each span once
            continue
        seen.add(id(span))
        ordered.append((span, depth))
        below = sorted(children.get(id(span), ()), key=_start, reverse=True)
        stack.extend((child, depth + 1) for child in below)
    ordered.extend((span, 0) for span in spans if id(span) not in seen)
    return ordered


def _start(span: StoredSpan) -> tuple[int, str]:
    return span.start_ns, span.span_id
