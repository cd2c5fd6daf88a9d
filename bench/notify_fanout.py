"""Benchmark: one notification to 100,000 subscribed companies, on SQLite and PostgreSQL
(PostgreSQL when INTEROPS_TEST_DATABASE_URL names a server): the time from the Send call to
every API-channel delivery done, rows written per second, and acknowledgements per second
(FetchNotifications, 100 at a time, then AcknowledgeNotifications: the received acknowledgement).

The baseline, measured in the same run on the same database, is a bare driver-level insert of
as many rows into a scratch table: the ratio says what the node does on top of writing.

    python -m bench.notify_fanout [--companies 100000]
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


def _floor(node: RunningNode, rows: int) -> float:
    """Rows per second of a bare insert into a scratch table."""
    marker = "%s" if node.node.engine.dialect.name == "postgresql" else "?"
    with node.node.engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE bench_floor (a VARCHAR(32), b VARCHAR(16), c INTEGER)")
        )
    data = [(f"{i:032d}", "API", i) for i in range(rows)]
    started = time.perf_counter()
    with node.node.engine.begin() as connection:
        for start in range(0, rows, 5000):
            connection.exec_driver_sql(
                f"INSERT INTO bench_floor VALUES ({marker}, {marker}, {marker})",
                data[start : start + 5000],
            )
    return rows / (time.perf_counter() - started)


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
                with node.node.engine.connect() as connection:
                    delivered_state = notify_deliveries.c.state == DeliveryState.DELIVERED
                    done = int(connection.execute(
                        select(func.count()).select_from(notify_deliveries)
                        .where(delivered_state)).scalar() or 0)  # fmt: skip
                time.sleep(0.05)
            delivered = time.perf_counter() - started
            rows = companies * 3  # a notification, its delivery, its delivered acknowledgement
            started = time.perf_counter()
            acknowledged = 0
            while acknowledged < min(companies, 20_000):
                got = client.notify.FetchNotifications(
                    pb.FetchNotificationsRequest(max_notifications=100)
                ).notifications
                acknowledged += client.acknowledge_notifications([n.id for n in got])
            acks = acknowledged / (time.perf_counter() - started)
        floor = _floor(node, rows)
    finally:
        node.stop()
    rate = rows / delivered
    print(f"{backend}: Send of {companies:,} notifications answered in {sent:.1f} s, all "
          f"delivered on the API channel in {delivered:.1f} s; {rate:,.0f} rows/s written "
          f"(bare insert {floor:,.0f} rows/s, ratio {rate / floor:.2f}); "
          f"{acks:,.0f} acknowledgements/s")  # fmt: skip


def main() -> None:
    """Runs the benchmark on each backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        for backend in ["sqlite"] + (["postgresql"] if PG_URL else []):
            with fresh_database(backend, Path(directory)) as url:
                _run(backend, url, Path(directory), args.companies)
        if not PG_URL:
            print("postgresql: skipped (set INTEROPS_TEST_DATABASE_URL)")


if __name__ == "__main__":
    main()
