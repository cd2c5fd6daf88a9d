"""Shares sealed for their organism (token_suite/sealed_share.py): the committed vectors, checked
as another implementation would; round trips of every size around the chunk; and every way a
share must not open: altered, cut short, followed by bytes, moved to another delivery, opened
with another key. And the X25519 keys the directory publishes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from nacl.bindings import crypto_box_seal_open

from token_suite.encryption_keys import (
    beside,
    check_encryption_key,
    encryption_key_id,
    generate_encryption_key,
    public_of,
    read_encryption_key,
    write_encryption_key,
)
from token_suite.errors import TokenError
from token_suite.sealed_share import (
    CHUNK_BYTES,
    MAGIC,
    SEALED_KEY_BYTES,
    ShareError,
    ShareFault,
    ShareWriter,
    _Randomness,
    open_share,
    share_key_id,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "token_suite" / "vectors" / "sealed_share_v1.json")
    .read_text()
)  # fmt: skip
RECIPIENT = bytes.fromhex(VECTORS["recipient"]["private_key"])
DELIVERY = "d0123.URSSAF"
PRIVATE = generate_encryption_key()
PUBLIC = public_of(PRIVATE)
KEY_ID = encryption_key_id(PUBLIC)


def _seal(plain: bytes, delivery: str = DELIVERY, piece: int = 7001, **options: Any) -> bytes:
    out = io.BytesIO()
    writer = ShareWriter(out, delivery, KEY_ID, PUBLIC, **options)
    for start in range(0, len(plain), piece):
        writer.write(plain[start : start + piece])
    writer.close()
    assert writer.size == len(plain) and writer.sha256 == hashlib.sha256(plain).digest()
    return out.getvalue()


def _open(sealed: bytes, delivery: str = DELIVERY, key: bytes = PRIVATE, piece: int = 0) -> bytes:
    pieces = [sealed[i : i + piece] for i in range(0, len(sealed), piece)] if piece else [sealed]
    return b"".join(open_share(pieces, delivery, key))


def _fault(sealed: bytes, delivery: str = DELIVERY, key: bytes = PRIVATE) -> ShareFault:
    with pytest.raises(ShareError) as refused:
        _open(sealed, delivery, key)
    return refused.value.fault


def _header_bytes() -> int:
    return len(MAGIC) + 2 + len(KEY_ID) + SEALED_KEY_BYTES + 24


# -- the vectors ---------------------------------------------------------------------------


def _vector_plaintext(case: dict[str, Any]) -> bytes:
    if "plaintext" in case:
        return bytes.fromhex(case["plaintext"])
    length = int(case["plaintext_rule"].split(" ")[0])
    assert case["plaintext_rule"] == f"{length} bytes, byte i is i mod 251"
    return bytes(i % 251 for i in range(length))


def _vector_sealed(case: dict[str, Any]) -> bytes:
    randomness = _Randomness(*(bytes.fromhex(case[name]) for name in _Randomness._fields))
    public = bytes.fromhex(VECTORS["recipient"]["public_key"])
    out = io.BytesIO()
    writer = ShareWriter(out, case["delivery_id"], VECTORS["recipient"]["key_id"], public,
                         _randomness=randomness)  # fmt: skip
    writer.write(_vector_plaintext(case))
    writer.close()
    return out.getvalue()


@pytest.mark.parametrize("case", VECTORS["shares"], ids=lambda case: case["name"])
def test_share_vector(case: dict[str, Any]) -> None:
    sealed = _vector_sealed(case)
    if "sealed" in case:
        assert sealed.hex() == case["sealed"]
    else:
        assert len(sealed) == case["sealed_length"]
        assert hashlib.sha256(sealed).hexdigest() == case["sealed_sha256"]
    plain = b"".join(open_share([sealed], case["delivery_id"], RECIPIENT))
    assert plain == _vector_plaintext(case)
    assert hashlib.sha256(plain).hexdigest() == case["plaintext_sha256"]
    # The content key is a libsodium sealed box, whoever wrote it.
    start = len(MAGIC) + 2 + len(VECTORS["recipient"]["key_id"])
    opened = crypto_box_seal_open(
        sealed[start : start + SEALED_KEY_BYTES], public_of(RECIPIENT), RECIPIENT
    )
    assert opened == bytes.fromhex(case["content_key"])


@pytest.mark.parametrize("case", VECTORS["refusals"], ids=lambda case: case["name"])
def test_refusal_vector(case: dict[str, Any]) -> None:
    if "sealed" in case:
        sealed = bytes.fromhex(case["sealed"])
    else:
        (source,) = [s for s in VECTORS["shares"] if s["name"] == case["sealed_prefix_of"]]
        sealed = _vector_sealed(source)[: case["length"]]
    key = bytes.fromhex(case["private_key"])
    assert _fault(sealed, case["delivery_id"], key) == case["outcome"]


def test_every_fault_has_a_vector_and_the_spec_lists_them() -> None:
    assert {case["outcome"] for case in VECTORS["refusals"]} == set(ShareFault)
    spec = (Path(__file__).resolve().parents[2] / "token_suite" / "SPEC.md").read_text()
    section = spec.split("\n## Sealed shares\n", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{fault}`" in section for fault in ShareFault)


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES + 5]
)
def test_a_share_opens_to_what_was_written_however_it_is_cut(size: int) -> None:
    plain = os.urandom(size)
    sealed = _seal(plain)
    assert sealed.startswith(MAGIC) and share_key_id(sealed) == KEY_ID
    for piece in (0, 1 + size // 3, 4093):
        assert _open(sealed, piece=piece) == plain


def test_two_shares_of_the_same_plaintext_share_nothing() -> None:
    plain = b"S21.G00.30.001,'1800175123456'\r\n" * 10
    first, second = _seal(plain), _seal(plain)
    header = len(MAGIC) + 2 + len(KEY_ID)
    assert first[:header] == second[:header]  # the key id, in clear
    assert first[header : header + 32] != second[header : header + 32]  # fresh ephemeral keys
    assert first[_header_bytes() :] != second[_header_bytes() :]  # fresh content keys


# -- refusals ------------------------------------------------------------------------------


def test_a_share_moved_to_another_delivery_does_not_open() -> None:
    sealed = _seal(b"S10.G00.00.001,'paie'\r\n")
    assert _fault(sealed, "d0123.DGFIP") == ShareFault.ALTERED
    assert _fault(sealed, "d9999.URSSAF") == ShareFault.ALTERED


def test_another_key_opens_nothing() -> None:
    sealed = _seal(b"S10.G00.00.001,'paie'\r\n")
    with pytest.raises(ShareError) as refused:
        _open(sealed, key=generate_encryption_key())
    assert refused.value.fault == ShareFault.WRONG_KEY
    assert KEY_ID in str(refused.value)  # names the key it wants


def test_every_altered_byte_is_found() -> None:
    sealed = _seal(os.urandom(CHUNK_BYTES + 100))
    start = len(MAGIC) + 2  # the key id is bound too, as associated data
    for position in range(start, len(sealed)):
        altered = bytearray(sealed)
        altered[position] ^= 0x20
        with pytest.raises(ShareError):
            _open(bytes(altered))


def test_a_share_cut_anywhere_does_not_open_whole() -> None:
    plain = os.urandom(CHUNK_BYTES + 100)
    sealed = _seal(plain)
    for length in [*range(0, _header_bytes() + 40), *range(len(sealed) - 40, len(sealed))]:
        with pytest.raises(ShareError):
            _open(sealed[:length])
    # Cut after the first chunk: that chunk is yielded, then the cut is found.
    first_chunk_end = _header_bytes() + 4 + CHUNK_BYTES + 17
    opened = open_share([sealed[:first_chunk_end]], DELIVERY, PRIVATE)
    assert next(opened) == plain[:CHUNK_BYTES]
    with pytest.raises(ShareError) as refused:
        next(opened)
    assert refused.value.fault == ShareFault.CUT_SHORT


def test_chunks_cannot_be_reordered_or_followed_by_anything() -> None:
    sealed = _seal(os.urandom(2 * CHUNK_BYTES + 10))
    header, full = _header_bytes(), 4 + CHUNK_BYTES + 17
    first, second = sealed[header : header + full], sealed[header + full : header + 2 * full]
    swapped = sealed[:header] + second + first + sealed[header + 2 * full :]
    assert _fault(swapped) == ShareFault.ALTERED
    assert _fault(sealed + b"S21") == ShareFault.TRAILING_BYTES
    assert _fault(sealed + sealed[header:]) == ShareFault.TRAILING_BYTES


# -- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        bytes(31),
        bytes(33),
        bytes(32),
        bytes([1]) + bytes(31),
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7"),
        bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    ],
)
def test_small_order_or_misshapen_encryption_keys_are_refused(raw: bytes) -> None:
    with pytest.raises(TokenError) as refused:
        check_encryption_key(raw)
    assert refused.value.reason == "BAD_KEY"
    with pytest.raises(TokenError):
        ShareWriter(io.BytesIO(), DELIVERY, "x25519:bad", raw)


def test_key_files_are_pem_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = beside(tmp_path / "URSSAF.pem")
    assert path.name == "URSSAF.x25519.pem"
    write_encryption_key(PRIVATE, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert read_encryption_key(path) == PRIVATE
    assert encryption_key_id(public_of(read_encryption_key(path))) == KEY_ID
    signing = tmp_path / "signing.pem"
    from token_suite.keys import generate, write_private_key

    write_private_key(generate(), signing)
    with pytest.raises(ValueError, match="X25519"):
        read_encryption_key(signing)
