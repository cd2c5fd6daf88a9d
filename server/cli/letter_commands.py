"""The mail room's commands, on the node's database and at-rest key: `interops letters batch`
prints every pending postal letter (one PDF per letter and the mail room's batch.csv, mode 0600:
they hold secrets), `interops letters list` lists letters without their text, `interops letters
track` records what the post did with one. Nothing else reads a letter: no API route does."""

from __future__ import annotations

import argparse
import csv
import io
import os
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registry.kernel.database import open_engine, upgrade
from registry.kernel.whole_files import WholeFile
from registry.letters.pdf import render
from registry.letters.store import Letter, LetterRefused, LetterStore
from server.config import Settings

# The mail room's file: one row per letter, the address in at most four lines before the town.
BATCH_COLUMNS = ("letter_id", "recipient_1", "recipient_2", "recipient_3", "recipient_4",
                 "postal_code", "city", "country", "pdf")  # fmt: skip


def _data_key(settings: Settings) -> AESGCM:
    """The node's at-rest key (the one server/node.py seals with), never created here: a key
    made by this command could not open the letters the node sealed."""
    path = settings.data_dir / "keys" / "data.key"
    if not path.exists():
        raise ValueError(f"no {path}: run this where the node's INTEROPS_DATA_DIR is")
    key = path.read_bytes()
    if len(key) != 32:
        raise ValueError(f"{path} does not hold a 32-byte key")
    return AESGCM(key)


def _on_store(action: Callable[[LetterStore, argparse.Namespace], int]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        settings = Settings.from_env()
        sealer = _data_key(settings)
        engine = open_engine(settings.effective_database_url)
        try:
            upgrade(engine)
            return action(LetterStore(engine, sealer), args)
        except LetterRefused as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        finally:
            engine.dispose()

    return run


def write_private(path: Path, data: bytes) -> None:
    """Writes a file whole (NAME.part, then renamed) that only its owner reads (0600)."""
    out = WholeFile(path)
    try:
        os.fchmod(out.out.fileno(), 0o600)  # before a byte of it is written
        out.write(data)
        out.commit()
    except BaseException:
        out.discard()
        raise


def batch_csv(letters: list[Letter]) -> bytes:
    """The mail room's batch.csv: a header, then one row per letter."""
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(BATCH_COLUMNS)
    for letter in letters:
        recipient = letter.recipient
        lines = [*recipient.lines, "", "", "", ""][:4]
        out.writerow([letter.id, *lines, recipient.postal_code, recipient.city,
                      recipient.country, f"{letter.id}.pdf"])  # fmt: skip
    return text.getvalue().encode()


def write_batch(out_dir: Path, batch_id: str, letters: list[Letter], printed_on: date) -> Path:
    """Writes OUT_DIR/<batch>/<letter id>.pdf for each letter, then batch.csv; returns the
    batch's directory (mode 0700)."""
    folder = out_dir / batch_id
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    for letter in letters:
        write_private(folder / f"{letter.id}.pdf", render(letter, printed_on))
    write_private(folder / "batch.csv", batch_csv(letters))
    return folder


def new_batch_id() -> str:
    """A batch id that sorts by time: 20261204-153012-a1b2c3."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _batch(store: LetterStore, args: argparse.Namespace) -> int:
    if args.again:
        batch_id, letters = args.again, store.batch(args.again)
        if not letters:
            raise LetterRefused("BAD_BATCH", f"no letter of batch {batch_id} is still PRINTED")
    else:
        batch_id = new_batch_id()
        letters = store.take_batch(batch_id, args.limit)
        if not letters:
            print("no letter is pending")
            return 0
    try:
        folder = write_batch(Path(args.out), batch_id, letters, date.today())
    except OSError:
        print(f"error: the files of batch {batch_id} were not all written; once the cause is "
              f"fixed: interops letters batch --out DIR --again {batch_id}",
              file=sys.stderr)  # fmt: skip
        raise
    print(f"batch {batch_id}: {len(letters)} letters in {folder} (batch.csv and one PDF each)")
    return 0


def _when(milliseconds: int) -> str:
    return f"{datetime.fromtimestamp(milliseconds / 1000, UTC):%Y-%m-%d %H:%M}"


def _list(store: LetterStore, args: argparse.Namespace) -> int:
    letters = store.letters(state=args.state, siret=args.siret, limit=args.limit)
    print("id\tkind\tsiret\tstate\tbatch\ttracking\tcreated (UTC)\tstate since (UTC)")
    for letter in letters:
        print(f"{letter.id}\t{letter.kind}\t{letter.siret}\t{letter.state}\t"
              f"{letter.batch_id or '-'}\t{letter.tracking or '-'}\t{_when(letter.created_at)}\t"
              f"{_when(letter.state_changed_at)}")  # fmt: skip
    return 0


def _track(store: LetterStore, args: argparse.Namespace) -> int:
    letter = store.track(args.id, args.state, args.tracking)
    print(f"letter {letter.id}: {letter.state}"
          + (f", tracking {letter.tracking}" if letter.tracking else ""))  # fmt: skip
    return 0


# What server/cli/commands.py runs, by name (imported only when a command is run).
HANDLERS = {
    "batch": _on_store(_batch),
    "list": _on_store(_list),
    "track": _on_store(_track),
}
