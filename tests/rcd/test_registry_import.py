"""Bulk import of Sirene stock files: over gRPC with progress, rejected lines, idempotence,
retries, refusal of files that are not stock files, and atomic batches."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from interops.operation.v1 import operation_pb2 as op
from interops.registry.v1 import registry_pb2 as pb
from sqlalchemy import func, select, text

from clients.client import Client
from clients.errors import InvalidArgument, NotFound, ResourceExhausted
from registry.kernel.database import open_engine, upgrade
from registry.rcd.schema import establishments
from registry.rcd.sirene_import import ImportInterrupted, import_stock
from registry.rcd.sirene_synth import ESTABLISHMENT_HEADER, StockFiles, write_stock
from tests.databases import fresh_database
from tests.rcd.stock_lines import establishment_line
from tests.running_node import RunningNode


def _finish(client: Client, operation: op.Operation) -> tuple[op.Operation, pb.ImportStockResult]:
    progress = [o.done_units for o in client.watch_operation(operation.name)]
    final = client.get_operation(operation.name)
    assert final.done
    assert progress == sorted(progress)
    result = pb.ImportStockResult()
    if final.result.value:
        final.result.Unpack(result)
    return final, result


def test_import_over_grpc_reports_progress_and_counts(client: Client, stock: StockFiles) -> None:
    uploaded: list[int] = []
    started = client.import_stock(
        stock.companies, on_progress=lambda sent, _: uploaded.append(sent)
    )
    assert uploaded[-1] == stock.companies.stat().st_size
    assert started.name.startswith("operations/") and started.unit == "bytes"
    final, result = _finish(client, started)
    assert final.state == op.OPERATION_STATE_SUCCEEDED
    assert final.done_units == final.total_units == stock.companies.stat().st_size
    assert result.kind == pb.STOCK_KIND_COMPANIES
    assert result.lines_read == result.lines_applied == result.lines_changed == len(stock.sirens)
    assert result.lines_rejected == 0


def test_importing_the_same_file_again_changes_nothing(client: Client, stock: StockFiles) -> None:
    first = _finish(client, client.import_stock(stock.establishments))[1]
    position = max(c.position for c in client.watch_changes(0))
    again = _finish(client, client.import_stock(stock.establishments))[1]
    assert first.lines_changed == len(stock.sirets)
    assert again.lines_applied == len(stock.sirets) and again.lines_changed == 0
    assert list(client.watch_changes(position)) == []


def test_a_retry_with_the_same_request_id_gives_the_same_operation(
    client: Client, stock: StockFiles
) -> None:
    first = client.import_stock(stock.companies, request_id="sirene-2026-11")
    second = client.import_stock(stock.companies, request_id="sirene-2026-11")
    assert first.name == second.name
    _finish(client, first)


def test_bad_lines_are_reported_with_their_number_and_the_rest_imported(
    client: Client, tmp_path: Path
) -> None:
    good = ["55203253400646", "73282932000074"]
    lines = [
        ",".join(ESTABLISHMENT_HEADER),
        establishment_line(good[0]),
        establishment_line("55203253400647"),
        establishment_line(good[1], dateCreationEtablissement="2001-13-45"),
        establishment_line("54210765113030", etatAdministratifEtablissement="X"),
        establishment_line("54210765113030", siren="542107652"),
    ]
    path = tmp_path / "StockEtablissement.csv"
    path.write_bytes(
        "\n".join(lines).encode() + b"\n" + establishment_line(good[1]).encode()
        + b"\n" + establishment_line("35600000000048", libelleCommuneEtablissement="\xff").encode()
        + b"\xe9\xff\n"
        + b"73282932000074,O\n"
    )  # fmt: skip
    final, result = _finish(client, client.import_stock(path))
    assert final.state == op.OPERATION_STATE_SUCCEEDED
    assert result.lines_read == 8 and result.lines_applied == 2 and result.lines_rejected == 6
    reasons = {r.line_number: r.reason for r in result.rejected_lines}
    assert sorted(reasons) == [3, 4, 5, 6, 8, 9]
    assert "check digit" in reasons[3]
    assert "dateCreationEtablissement" in reasons[4]
    assert "etatAdministratif" in reasons[5]
    assert "siren followed by nic" in reasons[6]
    assert "UTF-8" in reasons[8]
    assert "2 fields where the header has" in reasons[9]
    assert client.get_establishment(good[1]).creation_date.year == 2001


def test_a_file_that_is_not_a_stock_file_is_refused_at_once(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "payroll.csv"
    path.write_text("name,amount\nalice,10\n")
    with pytest.raises(InvalidArgument) as caught:
        client.import_stock(path)
    assert caught.value.reason == "NOT_A_STOCK_FILE"
    assert caught.value.violations[0].field == "chunk"
    companies = tmp_path / "companies.csv"
    companies.write_text("siren,foo\n")
    with pytest.raises(InvalidArgument) as lacking:
        client.import_stock(companies)
    assert "lacks the columns" in lacking.value.message


def test_the_declared_kind_must_match_the_file(client: Client, stock: StockFiles) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.import_stock(stock.companies, kind=pb.STOCK_KIND_ESTABLISHMENTS)
    assert "expected a StockEtablissement file" in caught.value.message


def test_chunks_before_the_header_are_refused(client: Client) -> None:
    def chunks_only() -> Iterator[pb.ImportStockRequest]:
        yield pb.ImportStockRequest(chunk=b"siren\n")

    with pytest.raises(InvalidArgument) as caught:
        client._unary(client.registry.ImportStock, chunks_only())
    assert caught.value.reason == "HEADER_FIRST"


def test_an_upload_larger_than_the_limit_is_refused(
    database_url: str, stock: StockFiles, tmp_path: Path
) -> None:
    node = RunningNode(database_url, tmp_path, max_import_bytes=1000)
    try:
        with (
            Client(node.address, credentials=node.credentials()) as small,
            pytest.raises(ResourceExhausted) as caught,
        ):
            small.import_stock(stock.companies)
        assert caught.value.reason == "IMPORT_TOO_LARGE"
        assert not list((tmp_path / "uploads").iterdir())
    finally:
        node.stop()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_batch_that_fails_in_the_database_is_not_applied_at_all(
    tmp_path: Path, backend: str
) -> None:
    files = write_stock(tmp_path / "stock", 250, seed=3)
    poisoned = files.sirets[130]
    with fresh_database(backend, tmp_path) as url:
        engine = open_engine(url)
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON establishments "
                    f"WHEN NEW.siret = '{poisoned}' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
                )
            )
        with pytest.raises(Exception, match="poisoned") as caught:
            import_stock(engine, files.establishments, batch_size=100)
        # The failure names no data of the batch (names of sole traders are personal data).
        assert files.sirets[120] not in str(caught.value)
        assert "parameters hidden" in str(caught.value)
        with engine.connect() as connection:
            count = connection.execute(select(func.count()).select_from(establishments)).scalar()
        assert count == 100  # the first batch whole, nothing of the second
        engine.dispose()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_stopped_import_keeps_whole_batches_and_resumes_idempotently(
    database_url: str, tmp_path: Path, workers: int
) -> None:
    files = write_stock(tmp_path / "stock", 250, seed=4)
    engine = open_engine(database_url)
    with engine.begin() as connection:
        connection.execute(establishments.delete())
    with pytest.raises(ImportInterrupted):
        import_stock(
            engine, files.establishments, batch_size=100, should_stop=lambda: True, workers=workers
        )
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(establishments)).scalar() == 100
    outcome = import_stock(engine, files.establishments, batch_size=100, workers=workers)
    assert outcome.lines_changed == len(files.sirets) - 100
    engine.dispose()


def test_a_followed_feed_delivers_changes_as_they_are_imported(
    client: Client, tmp_path: Path
) -> None:
    start = max((c.position for c in client.watch_changes(0)), default=0)
    feed = client.watch_changes(start, follow=True)
    received: list[pb.WatchChangesResponse] = []
    reader = threading.Thread(target=lambda: received.append(next(feed)))
    reader.start()
    time.sleep(0.5)  # the stream is open, caught up, and waiting
    assert not received
    siret = "54210765113030"
    path = tmp_path / "StockEtablissement.csv"
    header = ",".join(ESTABLISHMENT_HEADER)
    path.write_text(f"{header}\n{establishment_line(siret, enseigne1Etablissement='NEW')}\n")
    _finish(client, client.import_stock(path))
    reader.join(timeout=10)
    feed.close()
    assert received[0].position > start
    assert received[0].establishment.siret == siret
    assert received[0].establishment.name == "NEW"


def test_operations_are_found_by_name_only(client: Client) -> None:
    with pytest.raises(NotFound) as missing:
        client.get_operation("operations/" + "0" * 32)
    assert missing.value.reason == "OPERATION_NOT_FOUND"
    with pytest.raises(InvalidArgument) as malformed:
        client.get_operation("operations/../../etc")
    assert malformed.value.violations[0].field == "name"


def test_uploads_left_by_a_crash_are_removed_at_start(database_url: str, tmp_path: Path) -> None:
    leftover = tmp_path / "uploads" / "0123456789abcdef.csv"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("siren\n")
    long_ago = time.time() - 600
    os.utime(leftover, (long_ago, long_ago))
    spooling = tmp_path / "uploads" / "fedcba9876543210.csv"  # another node receiving one now
    spooling.write_text("siren\n")
    RunningNode(database_url, tmp_path).stop()
    assert not leftover.exists()
    assert spooling.exists()


def test_parsing_in_worker_processes_gives_the_same_outcome(
    database_url: str, tmp_path: Path
) -> None:
    lines = [establishment_line(s) for s in write_stock(tmp_path / "s", 40, seed=5).sirets]
    lines[3] = establishment_line("55203253400647")  # bad check digit
    lines[17] = "73282932000074,O"  # too few fields
    lines[30] = establishment_line("54210765113030", dateCreationEtablissement="2001-13-45")
    path = tmp_path / "StockEtablissement.csv"
    path.write_bytes(
        ("\n".join([",".join(ESTABLISHMENT_HEADER), *lines]) + "\n").encode()
        + establishment_line("35600000000048", libelleCommuneEtablissement="x").encode()
        + b"\xff\n"
    )
    engine = open_engine(database_url)
    outcomes = [import_stock(engine, path, batch_size=7, workers=workers) for workers in (2, 0)]
    engine.dispose()
    parallel, here = outcomes
    assert parallel.lines_read == here.lines_read == 41
    assert parallel.lines_applied == here.lines_applied == 37
    assert parallel.lines_changed > 0 and here.lines_changed == 0  # the second run found it all
    assert parallel.rejections == here.rejections
    assert [r.line_number for r in parallel.rejections] == [5, 19, 32, 42]


@pytest.mark.parametrize("workers", [0, 2])
def test_values_are_stored_exactly_and_a_nul_character_rejects_its_line(
    database_url: str, tmp_path: Path, workers: int
) -> None:
    tricky = "RUE \\N\tDU\\\\ BAC \\t"  # what COPY's text format would misread unescaped
    path = tmp_path / "StockEtablissement.csv"
    path.write_bytes(
        (
            "\n".join(
                [
                    ",".join(ESTABLISHMENT_HEADER),
                    establishment_line("55203253400646", libelleVoieEtablissement="FIRST"),
                    establishment_line("73282932000074", libelleVoieEtablissement="A\0B"),
                    establishment_line("55203253400646", libelleVoieEtablissement=tricky),
                ]
            )
            + "\n"
        ).encode()
    )
    engine = open_engine(database_url)
    outcome = import_stock(engine, path, workers=workers)
    with engine.connect() as connection:
        stored = connection.execute(
            select(establishments.c.siret, establishments.c.street_name).where(
                establishments.c.siret.in_(["55203253400646", "73282932000074"])
            )
        ).all()
    engine.dispose()
    assert [(r.line_number, r.reason) for r in outcome.rejections] == [
        (3, "the line holds a NUL character")
    ]
    assert outcome.lines_applied == 2  # and of the two lines of one key, the last wins:
    assert [tuple(row) for row in stored] == [("55203253400646", tricky)]
