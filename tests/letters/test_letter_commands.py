"""The mail room's `interops letters` commands as an operator types them, on the node's database
and at-rest key: a batch of PDF files and its CSV, the listing, the tracking."""

from __future__ import annotations

import csv
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pypdf import PdfReader
from sqlalchemy import Engine

from registry.kernel.sealing import load_or_create_key
from registry.letters.store import LetterStore
from tests.letters.places import new_siret, put_establishment

_BATCH = re.compile(r"batch (\S+): (\d+) letters in (\S+) ")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The node's data directory, with its at-rest key."""
    path = tmp_path_factory.mktemp("node-data")
    load_or_create_key(path / "keys" / "data.key")
    return path


@pytest.fixture(scope="module")
def store(engine: Engine, data_dir: Path) -> LetterStore:
    """The store as the node has it: sealing with the key in its data directory."""
    return LetterStore(engine, AESGCM((data_dir / "keys" / "data.key").read_bytes()))


def interops(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INTEROPS_DATABASE_URL": database_url,
           "INTEROPS_DATA_DIR": str(data_dir)}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "clients.cli", "letters", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def _letter(store: LetterStore, company: str, **address: str) -> tuple[int, str, str]:
    """A letter posted to a new establishment: its id, SIRET and secret key."""
    siret, key = new_siret(), f"KEY{secrets.token_hex(8).upper()}"
    put_establishment(store.engine, siret, company, **address)
    return store.post("ADMIN_ACTIVATION", siret, {"account": "12", "key": key}), siret, key


def test_a_batch_writes_a_pdf_per_letter_and_the_mail_rooms_csv(
    store: LetterStore, database_url: str, data_dir: Path, tmp_path: Path
) -> None:
    first = _letter(store, "SCIERIE DU JURA", name="DEPOT EST", complement="ZONE ARTISANALE")
    second = _letter(store, "CAVE COOPERATIVE", street_name="DES VIGNES", postal_code="21200",
                     city="BEAUNE")  # fmt: skip
    done = interops(database_url, data_dir, "batch", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    found = _BATCH.search(done.stdout)
    assert found is not None, done.stdout
    folder = tmp_path / found[1]
    assert Path(found[3]) == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    rows = {row["letter_id"]: row for row in csv.DictReader((folder / "batch.csv").open())}
    for letter_id, siret, key in (first, second):
        pdf = folder / f"{letter_id}.pdf"
        assert stat.S_IMODE(pdf.stat().st_mode) == 0o600
        text = PdfReader(pdf).pages[0].extract_text()
        assert key in text and siret in text
        assert rows[str(letter_id)]["pdf"] == pdf.name
    assert stat.S_IMODE((folder / "batch.csv").stat().st_mode) == 0o600
    assert not list(folder.glob("*.part"))
    text = PdfReader(folder / f"{first[0]}.pdf").pages[0].extract_text()
    for line in ("SCIERIE DU JURA", "DEPOT EST", "ZONE ARTISANALE", "12 BIS AV DES LILAS",
                 "69003 LYON"):  # fmt: skip
        assert line in text, line
    row = rows[str(second[0])]
    assert (row["recipient_1"], row["recipient_2"], row["recipient_4"]) == (
        "CAVE COOPERATIVE",
        "12 BIS AV DES VIGNES",
        "",
    )
    assert (row["postal_code"], row["city"], row["country"]) == ("21200", "BEAUNE", "")
    assert all(key not in done.stdout + done.stderr for _, _, key in (first, second))
    # A second batch does not print them again.
    again = interops(database_url, data_dir, "batch", "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    printed = sorted(path.name for path in tmp_path.glob("*/*.pdf"))
    assert printed.count(f"{first[0]}.pdf") == 1 and printed.count(f"{second[0]}.pdf") == 1


def test_a_lost_batch_is_written_again_until_its_letters_are_sent(
    store: LetterStore, database_url: str, data_dir: Path, tmp_path: Path
) -> None:
    letter_id, _, key = _letter(store, "IMPRIMERIE PERDUE")
    done = interops(database_url, data_dir, "batch", "--out", str(tmp_path))
    found = _BATCH.search(done.stdout)
    assert found is not None, done.stdout + done.stderr
    shutil.rmtree(tmp_path / found[1])
    again = interops(database_url, data_dir, "batch", "--out", str(tmp_path), "--again", found[1])
    assert again.returncode == 0, again.stderr
    assert key in PdfReader(tmp_path / found[1] / f"{letter_id}.pdf").pages[0].extract_text()
    store.track(letter_id, "SENT")
    shutil.rmtree(tmp_path / found[1])
    late = interops(database_url, data_dir, "batch", "--out", str(tmp_path), "--again", found[1])
    assert late.returncode == 1 and "still PRINTED" in late.stderr
    assert not (tmp_path / found[1]).exists()


def test_list_and_track_never_show_an_address_or_a_text(
    store: LetterStore, database_url: str, data_dir: Path, tmp_path: Path
) -> None:
    letter_id, siret, key = _letter(store, "MENUISERIE DISCRETE", street_name="DU SILENCE")
    listed = interops(database_url, data_dir, "list", "--siret", siret)
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^{letter_id}\tADMIN_ACTIVATION\t{siret}\tPENDING\t-\t-\t", listed.stdout,
                     re.MULTILINE)  # fmt: skip
    pending = interops(database_url, data_dir, "track", str(letter_id), "--state", "SENT")
    assert pending.returncode == 1 and "is PENDING" in pending.stderr
    assert interops(database_url, data_dir, "batch", "--out", str(tmp_path)).returncode == 0
    sent = interops(database_url, data_dir, "track", str(letter_id), "--state", "SENT",
                    "--tracking", "1A12345678901")  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert f"letter {letter_id}: SENT, tracking 1A12345678901" in sent.stdout
    delivered = interops(database_url, data_dir, "track", str(letter_id), "--state", "DELIVERED")
    assert delivered.returncode == 0, delivered.stderr
    listed = interops(database_url, data_dir, "list", "--state", "DELIVERED")
    line = next(line for line in listed.stdout.splitlines() if line.startswith(f"{letter_id}\t"))
    assert "\tDELIVERED\t" in line and "\t1A12345678901\t" in line
    every = interops(database_url, data_dir, "list").stdout
    for secret in (key, "MENUISERIE DISCRETE", "DU SILENCE"):
        assert secret not in every
    # The postal code, in any column but the SIRETs' (a random SIRET may hold those digits).
    columns = [c for c in re.split(r"[\t\n]", every) if not re.fullmatch(r"[0-9]{14}", c)]
    assert not any("69003" in column for column in columns)
    unknown = interops(database_url, data_dir, "track", "999999999", "--state", "RETURNED")
    assert unknown.returncode == 1 and "no letter 999999999" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_the_commands_need_the_nodes_key(
    database_url: str, tmp_path: Path, data_dir: Path, store: LetterStore
) -> None:
    elsewhere = tmp_path / "not-the-node"
    refused = interops(database_url, elsewhere, "batch", "--out", str(tmp_path / "out"))
    assert refused.returncode == 2 and "data.key" in refused.stderr
    assert not (elsewhere / "keys" / "data.key").exists()
    assert not (tmp_path / "out").exists()
