"""Benchmark: one notification to 100,000 subscribed companies, on SQLite and PostgreSQL
(PostgreSQL when INTEROPS_TEST_DATABASE_URL names a server): the time from the Send call to
every API-channel delivery delivered (recipients resolved, a notification and a delivery per
company written, each delivery delivered with its acknowledgement and its notification held for
fetching), and acknowledgements per second (FetchNotifications, 100 at a time, then
AcknowledgeNotifications: the received acknowledgement). Target: < 30 s on PostgreSQL.

The baseline, measured in the same run on the same database, is a bare INSERT ... SELECT of as
many rows as the fan-out writes (a notification, a delivery and an acknowledgement per company)
from the subscriptions into a plain table without index: the ratio says what the node does on
top of writing them.

    python -m bench.notify_fanout [--companies 100000] [--backend postgresql]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from interops.notify.v1 import notify_pb2 as pb
from sqlalchemy import func, select, text

from clients.client import Client
from registry.notify.schema import notify_deliveries
from registry.notify.store import DeliveryState
from tests.databases import PG_URL, fresh_database
from tests.running_node import RunningNode

NOTIFY = "interops.notify.v1.NotificationService"
# What a company's notification writes: the notification, its delivery, its acknowledgement.
ROWS_PER_COMPANY = 3


def _floor(node: RunningNode, rows_per_company: int) -> float:
    """Seconds of a bare INSERT ... SELECT of `rows_per_company` rows per subscription into a
    plain table (no index, no constraint), in one transaction."""
    with node.node.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE bench_floor "
                "(id VARCHAR(32), siren VARCHAR(9), channel VARCHAR(16), body TEXT)"
            )
        )
    started = time.perf_counter()
    with node.node.engine.begin() as connection:
        for _ in range(rows_per_company):
            connection.execute(
                text(
                    "INSERT INTO bench_floor (id, siren, channel, body) "
                    "SELECT siren || topic, siren, channels, 'Les taux PAS de ' || siren "
                    "FROM notify_subscriptions"
                )
            )
    return time.perf_counter() - started


def _run(backend: str, url: str, scratch: Path, companies: int) -> None:
    node = RunningNode(url, scratch / f"node-{backend}")  # polls every 0.05 s
    try:
        store = node.node.notify_store
        sirens = [f"{i:09d}" for i in range(companies)]
        with node.node.engine.begin() as connection:
            store._insert_many(connection, "notify_subscriptions",
                               [(s, "PAS_RATE", "API", "") for s in sirens],
                               ("siren", "topic", "channels", "email"))  # fmt: skip
        sender = node.organism("BENCH", "DGFIP", rights=("notify.send", "notify.read"))
        credentials = node.credentials(sender, (NOTIFY,))
        with Client(node.address, credentials=credentials, timeout=600) as client:
            client.notify.PublishTemplate(pb.PublishTemplateRequest(template=pb.Template(
                name="pas", topic=pb.TOPIC_PAS_RATE, subject="Taux PAS",
                body="Les taux PAS de {siren} sont disponibles.")))  # fmt: skip
            started = time.perf_counter()
            client.notify.Send(pb.SendRequest(request_id="fanout", template="pas"))
            sent = time.perf_counter() - started
            done = 0
            while done < companies:
                # An index probe while deliveries are due, then a count (100,000 rows to
                # count take some of the server).
                while store.held_due():
                    time.sleep(0.05)
                with node.node.engine.connect() as connection:
                    done = int(connection.execute(
                        select(func.count()).select_from(notify_deliveries).where(
                            notify_deliveries.c.channel == "API",
                            notify_deliveries.c.state == DeliveryState.DELIVERED,
                        )).scalar() or 0)  # fmt: skip
            delivered = time.perf_counter() - started
            started = time.perf_counter()
            acknowledged = 0
            while acknowledged < min(companies, 20_000):
                got = client.notify.FetchNotifications(
                    pb.FetchNotificationsRequest(max_notifications=100)
                ).notifications
                acknowledged += client.acknowledge_notifications([n.id for n in got])
            acks = acknowledged / (time.perf_counter() - started)
        floor = _floor(node, ROWS_PER_COMPANY)
    finally:
        node.stop()
    rows = companies * ROWS_PER_COMPANY
    print(f"{backend}: Send of {companies:,} notifications answered in {sent:.1f} s, all "
          f"delivered on the API channel {delivered:.1f} s after the Send (target < 30 s on "
          f"PostgreSQL), {rows / delivered:,.0f} rows/s; a bare INSERT ... SELECT of the same "
          f"{rows:,} rows {floor:.1f} s, ratio {delivered / floor:.1f}; "
          f"{acks:,.0f} acknowledgements/s")  # fmt: skip


def main() -> None:
    """Runs the benchmark on each backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    with tempfile.TemporaryDirectory() as directory:
        for backend in [b for b in backends if b == "sqlite" or PG_URL]:
            with fresh_database(backend, Path(directory)) as url:
                _run(backend, url, Path(directory), args.companies)
        if not PG_URL and "postgresql" in backends:
            print("postgresql: skipped (set INTEROPS_TEST_DATABASE_URL)")


if __name__ == "__main__":
    main()
