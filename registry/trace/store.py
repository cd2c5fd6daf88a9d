"""Storage of spans: batches added (a span sent twice by the same reporter is kept once), the
spans of one trace, and the purge of those older than the retention period."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from registry.kernel.database import reading
from registry.trace.schema import trace_spans

NODE = "node"


@dataclass(frozen=True)
class StoredSpan:
    """One span as kept: ids in hex, times in Unix nanoseconds, allowed attributes only."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    service: str
    reported_by: str
    start_ns: int
    end_ns: int
    status: int = 0
    attributes: Mapping[str, str | int | float | bool] = field(default_factory=dict)

    def row(self) -> dict[str, object]:
        """The span as a row of trace_spans (texts cut to their columns)."""
        return {
            "trace_id": self.trace_id, "span_id": self.span_id, "parent_id": self.parent_id,
            "name": self.name[:200], "kind": self.kind, "service": self.service[:100],
            "reported_by": self.reported_by[:64], "start_ns": self.start_ns,
            "end_ns": self.end_ns, "status": self.status,
            "attributes": json.dumps(dict(self.attributes), sort_keys=True),
        }  # fmt: skip

    @classmethod
    def of_row(cls, row: Mapping[str, object]) -> StoredSpan:
        """A row of trace_spans as a span."""
        return cls(
            trace_id=str(row["trace_id"]), span_id=str(row["span_id"]),
            parent_id=str(row["parent_id"]), name=str(row["name"]), kind=int(str(row["kind"])),
            service=str(row["service"]), reported_by=str(row["reported_by"]),
            start_ns=int(str(row["start_ns"])), end_ns=int(str(row["end_ns"])),
            status=int(str(row["status"])), attributes=json.loads(str(row["attributes"])),
        )  # fmt: skip


class TraceStore:
    """The trace_spans table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, spans: Sequence[StoredSpan]) -> None:
        """Stores a batch in one transaction; a span already kept from the same reporter (an
        export retried) is left as it is."""
        if not spans:
            return
        rows = list({(s.trace_id, s.span_id, s.reported_by): s.row() for s in spans}.values())
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(trace_spans).on_conflict_do_nothing()
        with self.engine.begin() as connection:
            connection.execute(statement, rows)

    def spans_of(self, trace_id: str, limit: int = 5000) -> list[StoredSpan]:
        """The spans of one trace by start time: at most `limit` from each reporter (the node,
        each organism), so that no organism's spans push another's out."""
        with reading(self.engine) as connection:
            reporters = connection.execute(
                select(trace_spans.c.reported_by).distinct()
                .where(trace_spans.c.trace_id == trace_id).limit(100)
            ).scalars().all()  # fmt: skip
            found = [
                StoredSpan.of_row(dict(row._mapping))
                for reporter in reporters
                for row in connection.execute(
                    select(trace_spans)
                    .where(
                        trace_spans.c.trace_id == trace_id, trace_spans.c.reported_by == reporter
                    )
                    .order_by(trace_spans.c.start_ns, trace_spans.c.span_id)
                    .limit(limit)
                )
            ]
        return sorted(found, key=lambda span: (span.start_ns, span.span_id))

    def count_of(self, trace_ids: Sequence[str]) -> dict[str, int]:
        """How many spans each of these traces has kept (absent: none)."""
        if not trace_ids:
            return {}

        query = (
            select(trace_spans.c.trace_id, func.count())
            .where(trace_spans.c.trace_id.in_(list(trace_ids)))
            .group_by(trace_spans.c.trace_id)
        )
        with reading(self.engine) as connection:
            return {str(trace_id): int(count) for trace_id, count in connection.execute(query)}

    def purge(self, ended_before_ns: int) -> int:
        """Forgets the spans that ended before this moment; returns how many."""
        with self.engine.begin() as connection:
            result = connection.execute(
                delete(trace_spans).where(trace_spans.c.end_ns < ended_before_ns)
            )
        return int(result.rowcount or 0)
