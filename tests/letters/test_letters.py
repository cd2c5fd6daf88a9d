"""Postal letters on each backend: posted to the RCD's address, sealed at rest, taken once per
batch even by two operators at once, tracked, listed without their text, and refused clearly."""

from __future__ import annotations

import secrets
import threading
from dataclasses import fields
from datetime import date
from io import BytesIO
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pypdf import PdfReader
from sqlalchemy import Engine, select, update

from registry.letters.pdf import printable, render
from registry.letters.schema import postal_letters
from registry.letters.states import LetterState
from registry.letters.store import (
    LETTER_VALUES,
    LetterKind,
    LetterRefused,
    LetterStore,
    LetterSummary,
)
from registry.rcd.records import AdministrativeState
from tests.letters.places import new_siret, put_establishment


@pytest.fixture(scope="module")
def store(engine: Engine) -> LetterStore:
    return LetterStore(engine, AESGCM(AESGCM.generate_key(bit_length=256)))


def _key() -> str:
    return f"ACT-{secrets.token_hex(8).upper()}"


def _posted(store: LetterStore, count: int = 1) -> list[int]:
    """Letters to new establishments of the RCD."""
    ids = []
    for _ in range(count):
        siret = new_siret()
        put_establishment(store.engine, siret, "BOULANGERIE TEST")
        ids.append(store.post("ADMIN_ACTIVATION", siret, {"account": "7", "key": _key()}))
    return ids


def test_a_letter_goes_to_the_address_the_rcd_held_when_it_was_posted(store: LetterStore) -> None:
    siret, key = new_siret(), _key()
    put_establishment(store.engine, siret, "BOULANGERIE DUPRÉ", name="ATELIER NORD",
                      complement="BATIMENT C")  # fmt: skip
    letter_id = store.post("ADMIN_ACTIVATION", siret, {"account": "41", "key": key})
    # The establishment moves after the posting: the letter keeps the address it was posted to.
    put_establishment(store.engine, siret, "BOULANGERIE DUPRÉ", street_name="DU PORT",
                      postal_code="13002", city="MARSEILLE")  # fmt: skip
    [letter] = [one for one in store.take_batch(f"b-{letter_id}") if one.id == letter_id]
    assert letter.recipient.address_lines() == [
        "BOULANGERIE DUPRÉ", "ATELIER NORD", "BATIMENT C", "12 BIS AV DES LILAS", "69003 LYON",
    ]  # fmt: skip
    assert letter.kind == LetterKind.ADMIN_ACTIVATION and letter.siret == siret
    assert f"Clé d'activation de votre compte administrateur : {key}" in letter.body
    assert "BOULANGERIE DUPRÉ" in letter.body and siret in letter.body and "41" in letter.body
    assert "ne tenez pas compte de ce courrier" in letter.body


def test_abroad_the_country_ends_the_address(store: LetterStore) -> None:
    siret = new_siret()
    put_establishment(store.engine, siret, "MAISON BELGE", street_number="3",
                      street_number_suffix="", street_type="", street_name="RUE HAUTE",
                      postal_code="1000", city="BRUXELLES", country="BELGIQUE")  # fmt: skip
    letter_id = store.post("PASSWORD_RESET", siret, {"account": "9", "code": "RST-1"})
    [letter] = [one for one in store.take_batch(f"b-{letter_id}") if one.id == letter_id]
    assert letter.recipient.address_lines()[-3:] == ["3 RUE HAUTE", "1000 BRUXELLES", "BELGIQUE"]
    assert "Code de réinitialisation de votre mot de passe : RST-1" in letter.body


def test_letters_are_refused_clearly(store: LetterStore) -> None:
    before = len(store.letters(limit=1_000_000))
    unknown = new_siret()
    with pytest.raises(LetterRefused, match=f"no establishment {unknown}") as refused:
        store.post("ADMIN_ACTIVATION", unknown, {"account": "1", "key": "K"})
    assert refused.value.reason == "UNKNOWN_ESTABLISHMENT"
    nowhere, no_town, ceased, known = new_siret(), new_siret(), new_siret(), new_siret()
    put_establishment(store.engine, nowhere, "SANS RUE", name="ENSEIGNE", street_number="",
                      street_number_suffix="", street_type="", street_name="")  # fmt: skip
    put_establishment(store.engine, no_town, "SANS VILLE", postal_code="", city="")
    put_establishment(store.engine, ceased, "FERMEE", state=AdministrativeState.CEASED)
    put_establishment(store.engine, known, "OUVERTE")
    cases = [
        ("ADMIN_ACTIVATION", nowhere, {"account": "1", "key": "K"}, "NO_POSTAL_ADDRESS"),
        ("ADMIN_ACTIVATION", no_town, {"account": "1", "key": "K"}, "NO_POSTAL_ADDRESS"),
        ("ADMIN_ACTIVATION", ceased, {"account": "1", "key": "K"}, "ESTABLISHMENT_CEASED"),
        ("LOVE_LETTER", known, {"account": "1", "key": "K"}, "BAD_LETTER"),
        ("ADMIN_ACTIVATION", known, {"key": "K"}, "BAD_LETTER"),
        ("ADMIN_ACTIVATION", known, {"account": "1", "key": "K", "company": "X"}, "BAD_LETTER"),
        ("PASSWORD_RESET", known, {"account": "1", "key": "K"}, "BAD_LETTER"),
        ("CANDIDATE_ACTIVATION", known, {"account": "1", "key": " "}, "BAD_LETTER"),
        ("CANDIDATE_ACTIVATION", known, {"account": "1", "key": "K\nX"}, "BAD_LETTER"),
    ]
    for kind, siret, values, reason in cases:
        with pytest.raises(LetterRefused) as refused:
            store.post(kind, siret, values)
        assert refused.value.reason == reason, (kind, values)
    assert len(store.letters(limit=1_000_000)) == before
    assert LETTER_VALUES[LetterKind.CANDIDATE_ACTIVATION] == {"account", "key"}


def test_the_address_and_text_are_sealed_at_rest(
    store: LetterStore, engine: Engine, database_url: str
) -> None:
    siret, key = new_siret(), f"SECRET{secrets.token_hex(10).upper()}"
    put_establishment(store.engine, siret, "ENTREPRISE SCELLEE", street_name="DU SECRET GARDE")
    letter_id = store.post("CANDIDATE_ACTIVATION", siret, {"account": "5", "key": key})
    with engine.connect() as connection:
        row = connection.execute(
            select(postal_letters).where(postal_letters.c.id == letter_id)
        ).one()
    stored = b"".join(value if isinstance(value, bytes) else str(value).encode() for value in row)
    for secret in (key, "DU SECRET GARDE", "ENTREPRISE SCELLEE"):
        assert secret.encode() not in stored
    if database_url.startswith("sqlite:///"):
        database = Path(database_url.removeprefix("sqlite:///"))
        on_disk = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
        assert key.encode() not in on_disk
    # Another key does not open it: the node's key is needed.
    stranger = LetterStore(engine, AESGCM(AESGCM.generate_key(bit_length=256)))
    with pytest.raises(InvalidTag):
        stranger._letter(row)


def test_a_sealed_text_moved_to_another_letter_does_not_open(
    store: LetterStore, engine: Engine
) -> None:
    first, second = _posted(store, 2)
    batch = f"moved-{first}"
    assert {first, second} <= {letter.id for letter in store.take_batch(batch)}
    with engine.begin() as connection:
        sealed = connection.execute(
            select(postal_letters.c.body_sealed).where(postal_letters.c.id == first)
        ).scalar_one()
        connection.execute(
            update(postal_letters).where(postal_letters.c.id == second).values(body_sealed=sealed)
        )
    with pytest.raises(InvalidTag):
        store.batch(batch)


def test_a_batch_takes_each_pending_letter_once(store: LetterStore) -> None:
    ids = _posted(store, 3)
    assert set(ids) <= {letter.id for letter in store.pending()}
    first = store.take_batch(f"once-{ids[0]}-a")
    assert set(ids) <= {letter.id for letter in first}
    assert {letter.batch_id for letter in first} == {f"once-{ids[0]}-a"}
    assert not set(ids) & {letter.id for letter in store.take_batch(f"once-{ids[0]}-b")}
    assert not set(ids) & {letter.id for letter in store.pending()}
    with pytest.raises(LetterRefused, match="already taken"):
        store.take_batch(f"once-{ids[0]}-a")
    with pytest.raises(LetterRefused):
        store.take_batch("../escape")
    # The batch can be written again while its letters are in the mail room.
    assert set(ids) <= {letter.id for letter in store.batch(f"once-{ids[0]}-a")}


def test_a_batch_takes_the_oldest_letters_up_to_its_limit(store: LetterStore) -> None:
    store.take_batch(f"drain-{secrets.token_hex(4)}")
    ids = _posted(store, 3)
    taken = store.take_batch(f"limit-{ids[0]}", limit=2)
    assert [letter.id for letter in taken] == ids[:2]
    assert [letter.id for letter in store.pending()] == ids[2:]


def _race(store: LetterStore, prefix: str) -> list[list[int]]:
    """The letters two batches took, started together from two threads."""
    start = threading.Barrier(2)
    taken: list[list[int]] = [[], []]

    def take(index: int) -> None:
        start.wait()
        taken[index] = [letter.id for letter in store.take_batch(f"{prefix}-{index}")]

    threads = [threading.Thread(target=take, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return taken


def test_two_batches_taken_at_once_never_share_a_letter(store: LetterStore) -> None:
    for round_ in range(6):
        ids = _posted(store, 40)
        first, second = _race(store, f"race-{round_}-{ids[0]}")
        assert not set(first) & set(second)
        assert set(ids) <= set(first) | set(second)


def test_tracking_follows_the_letter_and_erases_its_text(
    store: LetterStore, engine: Engine
) -> None:
    [pending] = _posted(store)
    with pytest.raises(LetterRefused, match="is PENDING"):
        store.track(pending, "SENT")
    store.take_batch(f"track-{pending}")
    sent = store.track(pending, "SENT", "1A 0123 4567 8")
    assert (sent.state, sent.tracking) == (LetterState.SENT, "1A 0123 4567 8")
    assert sent.state_changed_at >= sent.created_at
    with engine.connect() as connection:
        body = connection.execute(
            select(postal_letters.c.body_sealed).where(postal_letters.c.id == pending)
        ).scalar_one()
    assert body is None  # out of the mail room: the secret is no longer kept
    assert pending not in {letter.id for letter in store.batch(f"track-{pending}")}
    delivered = store.track(pending, "DELIVERED")
    assert (delivered.state, delivered.tracking) == (LetterState.DELIVERED, "1A 0123 4567 8")
    with pytest.raises(LetterRefused, match="cannot become RETURNED"):
        store.track(pending, "RETURNED")
    with pytest.raises(LetterRefused, match="no letter 999999999"):
        store.track(999_999_999, "SENT")
    [other] = _posted(store)
    store.take_batch(f"track-{other}")
    with pytest.raises(LetterRefused) as refused:
        store.track(other, "SENT", "<script>")
    assert refused.value.reason == "BAD_TRACKING"
    assert store.track(other, "RETURNED").state == LetterState.RETURNED


def test_listing_never_shows_an_address_or_a_text(store: LetterStore) -> None:
    [letter_id] = _posted(store)
    assert {field.name for field in fields(LetterSummary)} == {
        "id", "siret", "kind", "state", "batch_id", "tracking", "created_at", "state_changed_at",
    }  # fmt: skip
    [listed] = store.letters(after_id=letter_id - 1, limit=1)
    assert listed.id == letter_id and listed.state == LetterState.PENDING
    assert listed.kind == LetterKind.ADMIN_ACTIVATION
    assert [one.id for one in store.letters(siret=listed.siret)] == [letter_id]
    assert letter_id in {one.id for one in store.letters(state="PENDING", limit=1_000_000)}
    assert letter_id not in {one.id for one in store.letters(state="PRINTED", limit=1_000_000)}


def test_a_letter_renders_as_a_pdf_with_the_address_and_the_secret(store: LetterStore) -> None:
    siret, key = new_siret(), _key()
    put_establishment(store.engine, siret, "ŁÓDŹ TRADING 中国", complement="BATIMENT C")
    letter_id = store.post("CANDIDATE_ACTIVATION", siret, {"account": "3", "key": key})
    [letter] = [one for one in store.take_batch(f"pdf-{letter_id}") if one.id == letter_id]
    text = PdfReader(BytesIO(render(letter, date(2026, 12, 4)))).pages[0].extract_text()
    for line in ("LÓDZ TRADING ??", "BATIMENT C", "12 BIS AV DES LILAS", "69003 LYON",
                 "Le 4 décembre 2026", "Portail InterOPS", f"SIRET {siret}",
                 "Objet : Clé d'activation d'un administrateur candidat", key):  # fmt: skip
        assert line in text, line
    assert printable("Œuvre « € » ’") == "Œuvre « € » ’"
