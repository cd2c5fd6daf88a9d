"""The spans table on each backend: batches added (a retried export kept once per reporter),
a trace's spans, the tree order, and the purge of what is past retention only."""

from __future__ import annotations

import time

from sqlalchemy import Engine

from registry.trace.store import NODE, StoredSpan, TraceStore
from registry.trace.tree import tree_order

TRACE = "0af7651916cd43dd8448eb211c80319c"
HOUR_NS = 3600 * 10**9


def _span(span_id: str, parent: str = "", start: int = 0, end: int = 0, by: str = NODE,
          trace_id: str = TRACE) -> StoredSpan:  # fmt: skip
    now = time.time_ns()
    return StoredSpan(trace_id=trace_id, span_id=span_id, parent_id=parent, name=f"s-{span_id}",
                      kind=2, service="svc", reported_by=by, start_ns=start or now,
                      end_ns=end or start or now,
                      attributes={"interops.deposit_id": "d1"})  # fmt: skip


def test_spans_are_added_once_per_reporter_and_read_back_as_a_tree(engine: Engine) -> None:
    store = TraceStore(engine)
    t0 = time.time_ns()
    root = _span("a" * 16, start=t0, end=t0 + 100)
    child = _span("b" * 16, "a" * 16, t0 + 10, t0 + 50)
    remote = _span("c" * 16, "b" * 16, t0 + 20, t0 + 40, by="URSSAF")
    # An organism reporting a span under the node's ids does not replace the node's.
    shadow = _span("a" * 16, start=t0 - 5, end=t0 + 500, by="URSSAF")
    store.add([root, child])
    store.add([remote, child, shadow])  # a retried export: the child is not doubled
    spans = store.spans_of(TRACE)
    assert len(spans) == 4
    assert {(s.span_id, s.reported_by) for s in spans} == {
        ("a" * 16, NODE), ("b" * 16, NODE), ("c" * 16, "URSSAF"), ("a" * 16, "URSSAF")
    }  # fmt: skip
    assert spans[1].attributes == {"interops.deposit_id": "d1"}
    ordered = [(s.span_id[0], s.reported_by, depth) for s, depth in tree_order(spans)]
    assert ordered == [("a", "URSSAF", 0), ("a", NODE, 0), ("b", NODE, 1), ("c", "URSSAF", 2)]
    assert store.count_of([TRACE, "f" * 32]) == {TRACE: 4}


def test_the_purge_removes_only_spans_past_retention(engine: Engine) -> None:
    store = TraceStore(engine)
    trace_id = "1" * 32
    now = time.time_ns()
    old = _span("1" * 16, start=now - 80 * HOUR_NS, end=now - 73 * HOUR_NS, trace_id=trace_id)
    recent = _span("2" * 16, start=now - 80 * HOUR_NS, end=now - 71 * HOUR_NS,
                   trace_id=trace_id)  # fmt: skip
    store.add([old, recent])
    assert store.purge(now - 72 * HOUR_NS) == 1
    assert [s.span_id for s in store.spans_of(trace_id)] == ["2" * 16]
