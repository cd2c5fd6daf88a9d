"""After a deposit's AEE: validation (its CCO or BAN is the first return; a conformant file's
declared links and employments are recorded in the same pass), then routing (each organism's
share sealed on disk, then the outbox rows and ROUTED in one transaction).

Each step reads the deposit's state from the database and moves it on in one transaction, so a
crash at any point only makes the step run again on restart: shares are rewritten whole under
the same names, and the outbox rows are written at most once. Events (natures 04, 05, 07) are
taken before any monthly declaration waiting.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import BinaryIO

from opentelemetry.trace import Tracer

from clients.tracing import context_of
from registry.dsn.deposit_store import (
    DepositFiles,
    DepositState,
    DepositStore,
    RoutedShare,
    Validated,
    delivery_id,
)
from registry.dsn.revealed_relations import RelationCollector
from registry.dsn.routing import OrganismRules, Router
from registry.dsn.validation import validate
from registry.kernel.sealing import SealedWriter, sealed_lines
from registry.relations.store import Link, RelationsStore
from server.background_loop import BackgroundLoop

log = logging.getLogger("interops.dsn")


class DsnPipeline(BackgroundLoop):
    """Validates and routes deposits in a worker thread, woken by `wake` or every poll."""

    name = "dsn-pipeline"

    def __init__(
        self,
        store: DepositStore,
        files: DepositFiles,
        rules: dict[str, OrganismRules],
        poll_seconds: float,
        tracer: Tracer,
        *,
        relations: RelationsStore,
    ) -> None:
        self.relations = relations
        self.tracer = tracer
        self.store = store
        self.files = files
        self.router = Router(rules.values())
        super().__init__(poll_seconds)

    async def round(self) -> None:
        """Moves on every deposit left unfinished (deposits received, or a previous run's)."""
        try:
            work = await asyncio.to_thread(self.store.unfinished)
        except Exception:  # the database away: try again after the poll interval
            log.exception("the DSN pipeline cannot read its work; retrying")
            work = []
        for deposit_id, _ in work:
            try:
                await asyncio.to_thread(self.process, deposit_id)
            except Exception:  # one deposit failing must not hold up the others
                log.exception("deposit %s: processing failed; retried later", deposit_id)

    def process(self, deposit_id: str) -> None:
        """Moves one deposit on as far as it goes."""
        record = self.store.get(deposit_id)
        if record is None:
            return
        # The deposit's own trace: these spans join the call that deposited it.
        parent = context_of(record.trace_parent)
        attributes = {"interops.deposit_id": deposit_id}
        if record.state == DepositState.RECEIVED:
            with self.tracer.start_as_current_span("dsn.validate", parent, attributes=attributes):
                self._validate(deposit_id, record.sirets)
            record = self.store.get(deposit_id)
        if record is not None and record.state == DepositState.VALIDATED:
            with self.tracer.start_as_current_span("dsn.route", parent, attributes=attributes):
                self._route(deposit_id)

    def _validate(self, deposit_id: str, sirets: tuple[str, ...]) -> None:
        collector = RelationCollector()
        lines = sealed_lines(self.files.deposit(deposit_id), self.files.key)
        report = validate(lines, collector.closed)
        if report.conformant:  # upserts: recorded again harmlessly if the next step is redone
            found = collector.relations
            self.relations.record_links(
                Link(found.declarant_siret, siret, period, period, deposit_id)
                for siret, period in sorted(found.links)
            )
            self.relations.record_employments(found.employments)
        first = report.declarations[0] if report.declarations else None
        document = json.dumps(report.as_dict(), ensure_ascii=False).encode()
        outcome = Validated(
            conformant=report.conformant,
            norm_version=report.versions[0] if report.versions else "",
            nature=first.nature if first else "", type=first.type if first else "",
            month=first.month if first else "",
            sirets=tuple(s for d in report.declarations for s in d.sirets) or sirets,
            individuals=sum(d.individuals for d in report.declarations),
            blocking=report.blocking, warnings=report.warnings,
            rejection_code="" if report.conformant else "NOT_CONFORMANT",
            rejection_message="" if report.conformant else (
                f"{report.blocking} blocking anomalies: see the BAN"),
        )  # fmt: skip
        self.store.record_validation(deposit_id, outcome, document)
        log.info("deposit %s validated: %s", deposit_id, report.kind)

    def _route(self, deposit_id: str) -> None:
        writers: dict[str, SealedWriter] = {}

        def open_share(organism: str) -> BinaryIO:
            writer = self.files.writer(self.files.share(delivery_id(deposit_id, organism)))
            writers[organism] = writer
            return writer  # type: ignore[return-value]  # write() is all the router uses

        try:
            lines = sealed_lines(self.files.deposit(deposit_id), self.files.key)
            shares = self.router.route(lines, open_share)
        except BaseException:
            for writer in writers.values():
                writer.discard()
            raise
        concerned = {share.organism for share in shares}
        for organism, writer in writers.items():
            if organism in concerned:
                writer.close()
            else:
                writer.discard()
        self.store.record_routing(
            deposit_id,
            [RoutedShare(s.organism, s.size, s.digest.digest()) for s in shares],
        )
        log.info("deposit %s routed to %s", deposit_id, ", ".join(sorted(concerned)) or "nobody")
