"""Files that either are whole or are not there: written to NAME.part, made durable and renamed
into place on `commit`, removed on `discard`. Sealed deposits and organisms' shares use it."""

from __future__ import annotations

import os
from pathlib import Path


class WholeFile:
    """A file being written in place of `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".part")
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

    def discard(self) -> None:
        """Drops what was written."""
        self.out.close()
        self.partial.unlink(missing_ok=True)
