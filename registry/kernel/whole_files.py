"""Files that either are whole or are not there: written to NAME.RANDOM.part (one per writer, so
two writers of one name, such as two nodes on a shared volume, never write into each other's),
made durable and renamed into place on `commit` (the last commit wins whole), removed on
`discard`. Sealed deposits and organisms' shares use it (registry/kernel/blob_store.py)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from token_suite.keys import sync_directory


class WholeFile:
    """A file being written in place of `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.part")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.out = self.partial.open("wb")

    def write(self, data: bytes) -> int:
        """Appends bytes."""
        return self.out.write(data)

    def commit(self) -> None:
        """Flushes to disk and puts the file in place."""
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()
        self.partial.replace(self.path)
        # The rename itself made durable: a power cut after a caller recorded the file (a
        # delivery of this share) must not leave the record without it.
        sync_directory(self.path.parent)

    def discard(self) -> None:
        """Drops what was written."""
        self.out.close()
        self.partial.unlink(missing_ok=True)
