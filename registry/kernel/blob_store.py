"""Where sealed files (deposits, organisms' shares) are kept: named blobs, each either whole or
absent, so that a reader never sees half of one and a crash while writing leaves nothing.

Two stores behind one interface, chosen by `open_blob_store`: the node's file system
(INTEROPS_DATA_DIR/dsn, the embedded SQLite default: written aside and renamed, see
registry/kernel/whole_files.py) and the database (PostgreSQL: every node sharing it sees every
file, with no shared volume). The stores move bytes as given: what they hold is sealed before
(registry/kernel/sealing.py, token_suite/sealed_share.py).

In the database a blob is rows of at most CHUNK_BYTES (`sealed_file_chunks`), written in one
transaction on commit: until then the writer spools to an anonymous temporary file on the node's
disk (gone with the process if it dies), so memory stays one chunk whatever the blob's size.
Each commit is a new generation of its name; a reader follows the generation it started on and
fails if the blob is replaced or deleted under it, rather than mixing two.
"""

from __future__ import annotations

import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Generator, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from registry.kernel.database import reading
from registry.kernel.schema import sealed_file_chunks
from registry.kernel.whole_files import WholeFile

# Bytes of a blob per database row (and per chunk read from a file).
CHUNK_BYTES = 1 << 20
# A writer's unfinished file last written this long ago was left by a process killed mid-write
# (no live writer waits that long between two writes): `sweep` it.
PARTIAL_AFTER_SECONDS = 86_400.0
STORES = ("database", "files")


class BlobGone(FileNotFoundError):
    """A blob was replaced or deleted while it was being read."""


class BlobWriter(Protocol):
    """A blob being written: absent until `commit`, gone again after `discard`."""

    name: str

    def write(self, data: bytes) -> int:
        """Appends bytes."""

    def commit(self) -> None:
        """Puts the blob in place, whole (replacing one of the same name)."""

    def commit_in(self, connection: Connection) -> None:
        """As `commit`, within the caller's transaction on `connection` (the store's database):
        the blob appears with what that transaction writes. A file store puts the file in place
        at once, whatever becomes of the transaction."""

    def discard(self) -> None:
        """Drops what was written if not committed (after `commit`: nothing, so a writer that
        lost a race never takes away what another committed under the same name)."""

    def remove(self) -> None:
        """Removes the blob this writer committed."""


def _checked(name: str) -> str:
    """A blob name is a relative path of plain parts (`deposits/ID.dsn.sealed`)."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a blob name: {name!r}")
    return name


class BlobStore(ABC):
    """Named blobs, each whole or absent."""

    @abstractmethod
    def writer(self, name: str) -> BlobWriter:
        """A writer of the blob `name`, visible only once committed."""

    @abstractmethod
    def read(self, name: str) -> Iterator[bytes]:
        """The blob's bytes, chunk by chunk (FileNotFoundError when absent, at the first)."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """True when the blob is there."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Removes the blob; nothing when absent."""

    def read_bytes(self, name: str) -> bytes:
        """The whole blob (for small ones)."""
        return b"".join(self.read(name))

    def read_small(self, names: Collection[str]) -> dict[str, bytes]:
        """The blobs of `names` that are there and hold one chunk at most, whole, by name (read
        the others with `read`)."""
        found: dict[str, bytes] = {}
        for name in names:
            chunks = self.read(name)
            try:
                first = next(chunks, b"")
                if next(chunks, None) is None:
                    found[name] = first
            except FileNotFoundError:
                continue
            finally:
                if isinstance(chunks, Generator):
                    chunks.close()
        return found

    def sweep(self, started_before: float) -> int:
        """Removes what writers that never finished left behind (a process killed mid-write),
        if last written before `started_before` (a time.time()); returns how many."""
        return 0


class _FileWriter:
    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.file = WholeFile(path)

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def commit(self) -> None:
        self.file.commit()

    def commit_in(self, connection: Connection) -> None:
        self.file.commit()

    def discard(self) -> None:
        self.file.discard()

    def remove(self) -> None:
        self.file.path.unlink(missing_ok=True)


class FileBlobs(BlobStore):
    """Blobs as files under `root` (a node's own disk, or a volume its peers mount too)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        """Where the blob `name` is."""
        return self.root / _checked(name)

    def writer(self, name: str) -> BlobWriter:
        return _FileWriter(name, self.path(name))

    def read(self, name: str) -> Iterator[bytes]:
        with self.path(name).open("rb") as stream:
            while chunk := stream.read(CHUNK_BYTES):
                yield chunk

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def sweep(self, started_before: float) -> int:
        swept = 0
        for partial in self.root.rglob("*.part"):  # WholeFile's NAME.RANDOM.part
            try:
                if partial.stat().st_mtime < started_before:
                    partial.unlink()
                    swept += 1
            except FileNotFoundError:  # committed or discarded meanwhile
                continue
        return swept


class _DatabaseWriter:
    def __init__(self, store: DatabaseBlobs, name: str) -> None:
        self.store = store
        self.name = name
        self.spool: BinaryIO = tempfile.TemporaryFile(dir=store.spool_dir)  # noqa: SIM115

    def write(self, data: bytes) -> int:
        return self.spool.write(data)

    def commit(self) -> None:
        try:
            self.store._put(self.name, self.spool)
        finally:
            self.spool.close()

    def commit_in(self, connection: Connection) -> None:
        try:
            self.store._replace(connection, self.name, self.spool)
        finally:
            self.spool.close()

    def discard(self) -> None:
        self.spool.close()

    def remove(self) -> None:
        self.store.delete(self.name)


def commit_all_in(connection: Connection, writers: Sequence[BlobWriter]) -> None:
    """Puts several writers' blobs, of distinct names, in place within the caller's
    transaction, as each one's `commit_in` would: those bound for the database that fit in one
    chunk in two statements whatever their number (one DELETE of their names, one INSERT of
    their rows), the others one by one (memory holds one chunk of each blob at most)."""
    small = [w for w in writers
             if isinstance(w, _DatabaseWriter) and w.spool.tell() <= CHUNK_BYTES]  # fmt: skip
    try:
        if len({writer.name for writer in writers}) != len(writers):
            raise ValueError("two writers of the same blob: commit them one after the other")
        for writer in writers:
            if writer not in small:
                writer.commit_in(connection)
        if small:
            connection.execute(
                delete(sealed_file_chunks).where(
                    sealed_file_chunks.c.name.in_([writer.name for writer in small])
                )
            )
            connection.execute(insert(sealed_file_chunks), [
                row for w in small for row in _chunk_rows(w.name, w.spool, w.spool.tell())
            ])  # fmt: skip
    finally:
        for writer in small:
            writer.spool.close()


def _chunk_rows(name: str, spool: BinaryIO, size: int) -> Iterator[dict[str, object]]:
    """The rows of a new generation of the blob `name`: the spool's first `size` bytes in
    chunks of CHUNK_BYTES (an empty blob is one empty row)."""
    generation = uuid.uuid4().hex
    spool.seek(0)
    number, left = 0, size
    while True:
        data = spool.read(CHUNK_BYTES)
        left -= len(data)
        yield {"name": name, "number": number, "generation": generation, "data": data,
               "last": left <= 0}  # fmt: skip
        if left <= 0:
            return
        number += 1


class DatabaseBlobs(BlobStore):
    """Blobs as rows of chunks in the database every node shares; writers spool to
    `spool_dir` (the system's temporary directory when None) until they commit."""

    def __init__(self, engine: Engine, spool_dir: Path | None = None) -> None:
        self.engine = engine
        self.spool_dir = spool_dir
        if spool_dir is not None:
            spool_dir.mkdir(parents=True, exist_ok=True)

    def writer(self, name: str) -> BlobWriter:
        return _DatabaseWriter(self, _checked(name))

    def _put(self, name: str, spool: BinaryIO) -> None:
        """Replaces the blob `name` by the spool's bytes in one transaction."""
        size = spool.tell()
        for attempt in (1, 2):
            try:
                with self.engine.begin() as connection:
                    self._replace(connection, name, spool, size)
                return
            except IntegrityError:  # another writer committed the same name meanwhile
                if attempt == 2:
                    raise

    def _replace(
        self, connection: Connection, name: str, spool: BinaryIO, size: int | None = None
    ) -> None:
        """The blob `name` becomes the spool's first `size` bytes (all it was written) in the
        caller's transaction."""
        connection.execute(delete(sealed_file_chunks).where(sealed_file_chunks.c.name == name))
        self._insert(connection, name, spool, spool.tell() if size is None else size)

    @staticmethod
    def _insert(connection: Connection, name: str, spool: BinaryIO, size: int) -> None:
        for row in _chunk_rows(name, spool, size):  # one at a time: memory holds one chunk
            connection.execute(insert(sealed_file_chunks).values(**row))

    def read(self, name: str) -> Iterator[bytes]:
        chunks = sealed_file_chunks.c
        generation: str | None = None
        number = 0
        while True:
            with reading(self.engine) as connection:
                row = connection.execute(
                    select(chunks.generation, chunks.data, chunks.last).where(
                        chunks.name == name, chunks.number == number
                    )
                ).first()
            if row is None or (generation is not None and row.generation != generation):
                if generation is None:
                    raise FileNotFoundError(f"no blob {name}")
                raise BlobGone(f"{name} was replaced or deleted while it was read")
            generation = row.generation
            if row.data:
                yield bytes(row.data)
            if row.last:
                return
            number += 1

    def read_small(self, names: Collection[str]) -> dict[str, bytes]:
        """One statement for them all: the blobs whose first chunk is their last."""
        chunks = sealed_file_chunks.c
        if not names:
            return {}
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(chunks.name, chunks.data).where(
                    chunks.name.in_(list(names)), chunks.number == 0, chunks.last.is_(True)
                )
            ).all()
        return {str(row.name): bytes(row.data) for row in rows}

    def exists(self, name: str) -> bool:
        chunks = sealed_file_chunks.c
        with reading(self.engine) as connection:
            found = connection.execute(
                select(chunks.number).where(chunks.name == name, chunks.number == 0)
            ).first()
        return found is not None

    def delete(self, name: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(sealed_file_chunks).where(sealed_file_chunks.c.name == name))


class FallbackBlobs(BlobStore):
    """New blobs in `primary`; those written before it was chosen (files on disk, when a node
    moves to the database store) are still read and deleted from `older`."""

    def __init__(self, primary: BlobStore, older: BlobStore) -> None:
        self.primary = primary
        self.older = older

    def writer(self, name: str) -> BlobWriter:
        return self.primary.writer(name)

    def read(self, name: str) -> Iterator[bytes]:
        # The primary's first chunk says whether the blob is there (no separate lookup).
        chunks = self.primary.read(name)
        try:
            first = next(chunks, None)
        except FileNotFoundError:  # not in the primary: an older blob, or none
            yield from self.older.read(name)
            return
        if first is not None:
            yield first
        yield from chunks

    def read_small(self, names: Collection[str]) -> dict[str, bytes]:
        found = self.primary.read_small(names)
        # An older blob only where the primary has none at all (one of several chunks there
        # is read with `read`, from the primary, as `read` would).
        older = [name for name in names if name not in found and not self.primary.exists(name)]
        return found | self.older.read_small(older)

    def exists(self, name: str) -> bool:
        return self.primary.exists(name) or self.older.exists(name)

    def delete(self, name: str) -> None:
        self.primary.delete(name)
        self.older.delete(name)

    def sweep(self, started_before: float) -> int:
        return self.primary.sweep(started_before) + self.older.sweep(started_before)


def open_blob_store(engine: Engine, root: Path, choice: str = "auto") -> BlobStore:
    """The store of a node's sealed files: in the database when it is PostgreSQL (shared by
    every node; files already under `root` are still read), else files under `root`.
    `choice` ("database" or "files", INTEROPS_SEALED_FILES) overrides."""
    if choice == "auto":
        choice = "database" if engine.dialect.name == "postgresql" else "files"
    if choice not in STORES:
        raise ValueError(f"sealed files are kept in one of {', '.join(STORES)}, not {choice!r}")
    files = FileBlobs(root)
    if choice == "files":
        return files
    return FallbackBlobs(DatabaseBlobs(engine, root / "spool"), files)
