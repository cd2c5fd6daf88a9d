"""The store of sealed files (registry/kernel/blob_store.py), files and database, on each
backend: a blob is whole or absent (a writer discarded, or a process killed while writing or
committing, leaves nothing readable), a reader never mixes two versions, a 120 MiB blob goes in
and out in bounded memory, deletion, and the choice of store."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from registry.kernel.blob_store import (
    CHUNK_BYTES,
    BlobGone,
    BlobStore,
    BlobWriter,
    DatabaseBlobs,
    FallbackBlobs,
    FileBlobs,
    commit_all_in,
    open_blob_store,
)
from registry.kernel.schema import sealed_file_chunks
from server.config import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


@pytest.fixture(params=["files", "database"])
def kind(request: pytest.FixtureRequest) -> str:
    """Each store in turn."""
    return str(request.param)


@pytest.fixture
def store(kind: str, engine: Engine, tmp_path: Path) -> BlobStore:
    """A store of that kind (the database one on the module's backend)."""
    if kind == "files":
        return FileBlobs(tmp_path / "blobs")
    return DatabaseBlobs(engine, tmp_path / "spool")


def _pieces(count: int, size: int = MIB) -> Iterator[bytes]:
    """`count` distinct pieces of `size` bytes, the same on every call."""
    for number in range(count):
        yield hashlib.sha256(number.to_bytes(8, "big")).digest() * (size // 32)


def _rows(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        found = connection.execute(
            select(sealed_file_chunks.c.number).where(sealed_file_chunks.c.name == name)
        ).all()
    return len(found)


def test_a_blob_is_absent_until_committed_and_replaced_whole(store: BlobStore) -> None:
    name = "shares/whole.dsn.sealed"
    old = b"".join(_pieces(3)) + b"tail"
    writer = store.writer(name)
    for piece in _pieces(3):
        writer.write(piece)
    writer.write(b"tail")
    assert not store.exists(name)
    with pytest.raises(FileNotFoundError):
        store.read_bytes(name)
    writer.commit()
    assert store.exists(name)
    assert store.read_bytes(name) == old
    assert all(len(chunk) <= CHUNK_BYTES for chunk in store.read(name))
    # Another version being written changes nothing until it commits, then replaces it whole.
    again = store.writer(name)
    again.write(b"new version")
    assert store.read_bytes(name) == old
    again.commit()
    assert store.read_bytes(name) == b"new version"
    # A writer dropped leaves nothing; an empty blob is a blob.
    dropped = store.writer("shares/dropped.dsn.sealed")
    dropped.write(b"half")
    dropped.discard()
    assert not store.exists("shares/dropped.dsn.sealed")
    empty = store.writer("shares/empty.dsn.sealed")
    empty.commit()
    assert store.exists("shares/empty.dsn.sealed")
    assert store.read_bytes("shares/empty.dsn.sealed") == b""


def test_a_writer_that_lost_a_race_leaves_the_winners_blob(store: BlobStore) -> None:
    name = "shares/raced.dsn.sealed"
    loser, winner = store.writer(name), store.writer(name)
    loser.write(b"the loser's")
    loser.commit()
    winner.write(b"the winner's")
    winner.commit()
    loser.discard()  # a node failing later drops its writers: not what is committed
    assert store.read_bytes(name) == b"the winner's"
    lost = store.writer("deposits/lost-race.dsn.sealed")
    lost.write(b"a concurrent retry stored its own first")
    lost.commit()
    lost.remove()
    assert not store.exists("deposits/lost-race.dsn.sealed")


def test_blobs_put_in_place_together_within_a_transaction(store: BlobStore, engine: Engine) -> None:
    """What a deposit's routing does with its shares (`commit_all_in`): blobs of one chunk go in
    together, a larger one row by row, an empty one too; each replaces its name whole; a
    transaction that fails puts none of them in place."""
    blobs = {"shares/a.dsn.sealed": b"a" * 1000, "shares/empty.dsn.sealed": b"",
             "shares/large.dsn.sealed": b"".join(_pieces(3)) + b"tail",
             "shares/full.dsn.sealed": b"f" * CHUNK_BYTES}  # fmt: skip
    old = store.writer("shares/a.dsn.sealed")
    old.write(b"an earlier routing's share, longer than the new one" * 100)
    old.commit()

    def writers() -> list[BlobWriter]:
        made = []
        for name, data in blobs.items():
            writer = store.writer(name)
            writer.write(data)
            made.append(writer)
        return made

    def failing() -> None:
        with engine.begin() as connection:
            commit_all_in(connection, writers())
            raise RuntimeError("the routing's transaction fails")

    with pytest.raises(RuntimeError):
        failing()
    if isinstance(store, DatabaseBlobs):  # files are put in place at once (before the rows)
        assert not store.exists("shares/large.dsn.sealed")
        assert store.read_bytes("shares/a.dsn.sealed").startswith(b"an earlier")
    with pytest.raises(ValueError, match="same blob"), engine.begin() as connection:
        commit_all_in(connection, [*writers(), store.writer("shares/a.dsn.sealed")])
    if isinstance(store, DatabaseBlobs):  # nothing put in place
        assert store.read_bytes("shares/a.dsn.sealed").startswith(b"an earlier")
    with engine.begin() as connection:
        commit_all_in(connection, writers())
    for name, data in blobs.items():
        assert store.read_bytes(name) == data
    if isinstance(store, DatabaseBlobs):
        assert _rows(engine, "shares/large.dsn.sealed") == 4
        assert _rows(engine, "shares/a.dsn.sealed") == 1


def test_small_blobs_read_together(store: BlobStore) -> None:
    """What a lease with contents reads of its shares at once (`read_small`): the blobs of one
    chunk, whole; not those absent, nor those of several chunks (read one by one)."""
    blobs = {"shares/one.dsn.sealed": b"one", "shares/empty.dsn.sealed": b"",
             "shares/full.dsn.sealed": b"f" * CHUNK_BYTES,
             "shares/two.dsn.sealed": b"t" * (CHUNK_BYTES + 1)}  # fmt: skip
    for name, data in blobs.items():
        writer = store.writer(name)
        writer.write(data)
        writer.commit()
    found = store.read_small([*blobs, "shares/absent.dsn.sealed"])
    assert found == {name: data for name, data in blobs.items() if len(data) <= CHUNK_BYTES}
    assert store.read_small([]) == {}


def test_delete(store: BlobStore) -> None:
    writer = store.writer("deposits/purged.dsn.sealed")
    for piece in _pieces(2):
        writer.write(piece)
    writer.commit()
    store.delete("deposits/purged.dsn.sealed")
    assert not store.exists("deposits/purged.dsn.sealed")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("deposits/purged.dsn.sealed")
    store.delete("deposits/purged.dsn.sealed")  # gone already: nothing to do
    store.delete("deposits/never.dsn.sealed")


def test_a_reader_never_mixes_two_versions(store: BlobStore, kind: str) -> None:
    name = "shares/mixed.dsn.sealed"
    old = b"".join(_pieces(3))
    writer = store.writer(name)
    writer.write(old)
    writer.commit()
    reading = store.read(name)
    first = next(reading)
    replaced = store.writer(name)  # routed again while an organism downloads it
    replaced.write(bytes(3 * MIB))
    replaced.commit()
    if kind == "files":  # the open file is the old one, read to its end
        assert first + b"".join(reading) == old
    else:  # the rest of the old one is gone: an error, not the new one's rest
        with pytest.raises(BlobGone):
            b"".join(reading)
    reading = store.read(name)
    assert next(reading) == bytes(MIB)
    store.delete(name)  # purged while read
    if kind == "files":
        assert b"".join(reading) == bytes(2 * MIB)
    else:
        with pytest.raises(BlobGone):
            b"".join(reading)


@pytest.mark.parametrize("name", ["../keys/data.key", "/etc/passwd", "shares/../../x", ""])
def test_a_name_cannot_leave_the_store(store: BlobStore, name: str) -> None:
    with pytest.raises(ValueError, match="not a blob name"):
        store.writer(name)


# A child process that writes a blob of 64 MiB and is killed: before it commits (every store),
# or while its commit's transaction writes rows (the database store).
_CHILD = """
import sys, time
from pathlib import Path
from registry.kernel.blob_store import DatabaseBlobs, FileBlobs
from registry.kernel.database import open_engine
kind, url, root, when = sys.argv[1:]
store = FileBlobs(Path(root)) if kind == "files" else DatabaseBlobs(open_engine(url), Path(root))
writer = store.writer("deposits/crash.dsn.sealed")
for number in range(64):
    writer.write(bytes([number % 251]) * (1 << 20))
print("written", flush=True)
if when == "commit":
    writer.commit()
    print("committed", flush=True)
time.sleep(60)
"""


def _child(kind: str, url: str, root: Path, when: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PGAPPNAME": "blob-crash"}
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, kind, url, str(root), when],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def _committing(engine: Engine, url: str) -> bool:
    """True once the child's commit is under way: its transaction holds rows (PostgreSQL) or
    the database's write lock (SQLite)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            return bool(connection.execute(text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'blob-crash' AND backend_xid IS NOT NULL"
            )).scalar())  # fmt: skip
    probe = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:  # locked: the child writes
        return True
    finally:
        probe.close()


@pytest.mark.parametrize("when", ["write", "commit"])
def test_a_process_killed_while_writing_leaves_nothing(
    kind: str, when: str, engine: Engine, tmp_path: Path
) -> None:
    if kind == "files" and when == "commit":
        pytest.skip("a file is committed by one rename")
    url = engine.url.render_as_string(hide_password=False)
    root = tmp_path / ("blobs" if kind == "files" else "spool")
    child = _child(kind, url, root, when)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "written\n"
        if when == "commit":
            deadline = time.monotonic() + 60
            while not _committing(engine, url):
                assert child.poll() is None and time.monotonic() < deadline
                time.sleep(0.002)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.stdout.read() == ""  # killed before its commit returned
    store: BlobStore = FileBlobs(root) if kind == "files" else DatabaseBlobs(engine, root)
    assert not store.exists("deposits/crash.dsn.sealed")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("deposits/crash.dsn.sealed")
    assert _rows(engine, "deposits/crash.dsn.sealed") == 0
    if kind == "database":
        assert list(root.iterdir()) == []  # the spool went with the process
    else:  # the killed writer's NAME.RANDOM.part stays until swept, once old enough
        (partial,) = (root / "deposits").glob("crash.dsn.sealed.*.part")
        store.writer("deposits/kept.dsn.sealed").commit()
        assert store.sweep(time.time() - 3600) == 0  # written just now: perhaps a live writer
        os.utime(partial, (time.time() - 7200, time.time() - 7200))
        assert store.sweep(time.time() - 3600) == 1
        assert not partial.exists() and store.exists("deposits/kept.dsn.sealed")


# Writes then reads 120 MiB through a store in a child process; prints the growth of its
# resident memory at its peak, in MiB, and whether it read back what it wrote.
_BIG = """
import hashlib, resource, sys
from pathlib import Path
from registry.kernel.blob_store import DatabaseBlobs, FileBlobs
from registry.kernel.database import open_engine
kind, url, root = sys.argv[1:]
store = FileBlobs(Path(root)) if kind == "files" else DatabaseBlobs(open_engine(url), Path(root))
store.writer("deposits/warm.dsn.sealed").commit()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
writer, written = store.writer("deposits/big.dsn.sealed"), hashlib.sha256()
for number in range(120 * 16):
    piece = hashlib.sha256(number.to_bytes(4, "big")).digest() * 2048
    writer.write(piece)
    written.update(piece)
writer.commit()
read, largest = hashlib.sha256(), 0
for chunk in store.read("deposits/big.dsn.sealed"):
    read.update(chunk)
    largest = max(largest, len(chunk))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) // 1024, read.digest() == written.digest(), largest)
"""


def test_a_large_blob_goes_in_and_out_in_bounded_memory(
    kind: str, engine: Engine, tmp_path: Path
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    root = tmp_path / ("blobs" if kind == "files" else "spool")
    done = subprocess.run(
        [sys.executable, "-c", _BIG, kind, url, str(root)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    growth, same, largest = done.stdout.split()
    assert same == "True" and int(largest) == CHUNK_BYTES
    assert int(growth) < 40, f"{growth} MiB more resident for a 120 MiB blob"


def test_the_node_keeps_sealed_files_in_the_database_when_it_is_postgresql(
    engine: Engine, tmp_path: Path
) -> None:
    chosen = open_blob_store(engine, tmp_path / "dsn")
    if engine.dialect.name == "postgresql":
        assert isinstance(chosen, FallbackBlobs) and isinstance(chosen.primary, DatabaseBlobs)
    else:
        assert isinstance(chosen, FileBlobs) and chosen.root == tmp_path / "dsn"
    assert isinstance(open_blob_store(engine, tmp_path / "dsn", "files"), FileBlobs)
    with pytest.raises(ValueError, match="one of database, files"):
        open_blob_store(engine, tmp_path / "dsn", "s3")
    assert Settings.from_env({}).sealed_files == "auto"
    assert Settings.from_env({"INTEROPS_SEALED_FILES": "Files"}).sealed_files == "files"
    with pytest.raises(ConfigError, match="INTEROPS_SEALED_FILES"):
        Settings.from_env({"INTEROPS_SEALED_FILES": "s3"})


def test_files_written_before_the_database_store_are_still_read_then_purged(
    engine: Engine, tmp_path: Path
) -> None:
    on_disk = FileBlobs(tmp_path / "dsn")
    before = on_disk.writer("shares/before.dsn.sealed")
    before.write(b"sealed before the move")
    before.commit()
    store = open_blob_store(engine, tmp_path / "dsn", "database")
    assert store.exists("shares/before.dsn.sealed")
    assert store.read_bytes("shares/before.dsn.sealed") == b"sealed before the move"
    assert store.read_small(["shares/before.dsn.sealed"]) == {
        "shares/before.dsn.sealed": b"sealed before the move"
    }
    rewritten = store.writer("shares/before.dsn.sealed")  # routed again: into the database
    rewritten.write(b"sealed again")
    rewritten.commit()
    assert store.read_bytes("shares/before.dsn.sealed") == b"sealed again"
    assert store.read_small(["shares/before.dsn.sealed"]) == {
        "shares/before.dsn.sealed": b"sealed again"
    }
    assert _rows(engine, "shares/before.dsn.sealed") == 1
    store.delete("shares/before.dsn.sealed")
    assert not store.exists("shares/before.dsn.sealed")
    assert not on_disk.exists("shares/before.dsn.sealed")
    # An older file under the name of a database blob of several chunks is not what is read.
    stale = on_disk.writer("shares/large.dsn.sealed")
    stale.write(b"an earlier routing's share, left on disk")
    stale.commit()
    large = store.writer("shares/large.dsn.sealed")
    large.write(b"l" * (CHUNK_BYTES + 1))
    large.commit()
    assert store.read_small(["shares/large.dsn.sealed"]) == {}
    assert store.read_bytes("shares/large.dsn.sealed") == b"l" * (CHUNK_BYTES + 1)
