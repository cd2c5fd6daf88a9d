"""Writes token_suite/vectors/sealed_share_v1.json: sealed shares written with fixed keys and
fixed randomness, and shares that must not open, each with its expected outcome.

    python -m tests.token.make_sealed_share_vectors

The file is committed; tests/token/test_sealed_share.py checks every case against it using
nothing but the file and the library, as an implementation in another language would.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from token_suite.encryption_keys import encryption_key_id, public_of
from token_suite.sealed_share import (
    CHUNK_BYTES,
    MAGIC,
    ShareError,
    ShareWriter,
    _Randomness,
    open_share,
)

OUT = Path(__file__).resolve().parents[2] / "token_suite" / "vectors" / "sealed_share_v1.json"
DELIVERY = "0123456789abcdef0123456789abcdef.URSSAF"
# A few lines of a synthetic DSN share: what a share holds, NIR and names made up.
SMALL_PLAINTEXT = (
    b"S10.G00.00.001,'Logiciel de paie'\r\n"
    b"S21.G00.30.001,'1800175123456'\r\n"
    b"S21.G00.30.002,'DUPONT'\r\n"
    b"S21.G00.30.004,'Jeanne'\r\n"
    b"S90.G00.90.001,'4'\r\n"
)
# Byte i of the long plaintext is i mod 251: two full chunks and a short last one.
LONG_LENGTH = 2 * CHUNK_BYTES + 1000


def _key(label: bytes) -> bytes:
    return hashlib.sha256(label).digest()


RECIPIENT = _key(b"interops sealed share vector: recipient")
OTHER = _key(b"interops sealed share vector: another organism")


def _randomness(label: bytes) -> _Randomness:
    return _Randomness(
        content_key=_key(label + b": content key"),
        ephemeral_seed=_key(label + b": ephemeral seed"),
        stream_header=_key(label + b": stream header")[:24],
    )


def long_plaintext() -> bytes:
    """The long case's plaintext (the vectors file gives its rule, not its bytes)."""
    return bytes(i % 251 for i in range(LONG_LENGTH))


def _seal(plain: bytes, randomness: _Randomness) -> bytes:
    out = io.BytesIO()
    public = public_of(RECIPIENT)
    writer = ShareWriter(out, DELIVERY, encryption_key_id(public), public, _randomness=randomness)
    writer.write(plain)
    writer.close()
    return out.getvalue()


def _outcome(sealed: bytes, delivery_id: str, private: bytes) -> str:
    try:
        b"".join(open_share([sealed], delivery_id, private))
    except ShareError as error:
        return error.fault.value
    return "OPENS"


def main() -> None:
    """Writes the vectors file."""
    small_random, long_random = _randomness(b"small"), _randomness(b"long")
    small = _seal(SMALL_PLAINTEXT, small_random)
    long = _seal(long_plaintext(), long_random)
    key_id = encryption_key_id(public_of(RECIPIENT))
    header = len(MAGIC) + 2 + len(key_id) + 80 + 24
    flipped = bytearray(small)
    flipped[header + 4 + 3] ^= 1  # a byte of the only chunk's ciphertext
    version = bytearray(small)
    version[len(MAGIC)] = 2
    refusals = [
        ("another delivery id", small, DELIVERY.replace("URSSAF", "DGFIP"), RECIPIENT),
        ("another organism's private key", small, DELIVERY, OTHER),
        ("a ciphertext bit flipped", bytes(flipped), DELIVERY, RECIPIENT),
        ("the final chunk dropped", small[:header], DELIVERY, RECIPIENT),
        ("cut inside the final chunk", small[:-5], DELIVERY, RECIPIENT),
        ("a byte after the final chunk", small + b"\x00", DELIVERY, RECIPIENT),
        ("an unknown version", bytes(version), DELIVERY, RECIPIENT),
        ("not a sealed share", SMALL_PLAINTEXT, DELIVERY, RECIPIENT),
    ]  # fmt: skip

    # Cut after its two full chunks: given as a length of the "three chunks" share.
    cut = header + 2 * (4 + CHUNK_BYTES + 17)

    def randomness(chosen: _Randomness) -> dict[str, str]:
        return {"content_key": chosen.content_key.hex(),
                "ephemeral_seed": chosen.ephemeral_seed.hex(),
                "stream_header": chosen.stream_header.hex()}  # fmt: skip

    document: dict[str, Any] = {
        "spec": "token_suite/SPEC.md, Sealed shares, version 1",
        "chunk_bytes": CHUNK_BYTES,
        "recipient": {"private_key": RECIPIENT.hex(), "public_key": public_of(RECIPIENT).hex(),
                      "key_id": key_id},
        "other_private_key": OTHER.hex(),
        "shares": [
            {"name": "one chunk", "delivery_id": DELIVERY, **randomness(small_random),
             "plaintext": SMALL_PLAINTEXT.hex(),
             "plaintext_sha256": hashlib.sha256(SMALL_PLAINTEXT).hexdigest(),
             "sealed": small.hex()},
            {"name": "three chunks", "delivery_id": DELIVERY, **randomness(long_random),
             "plaintext_rule": f"{LONG_LENGTH} bytes, byte i is i mod 251",
             "plaintext_sha256": hashlib.sha256(long_plaintext()).hexdigest(),
             "sealed_length": len(long), "sealed_sha256": hashlib.sha256(long).hexdigest()},
        ],
        "refusals": [
            {"name": name, "sealed": sealed.hex(), "delivery_id": delivery,
             "private_key": private.hex(), "outcome": _outcome(sealed, delivery, private)}
            for name, sealed, delivery, private in refusals
        ] + [
            {"name": "the three-chunk share without its final chunk",
             "sealed_prefix_of": "three chunks", "length": cut, "delivery_id": DELIVERY,
             "private_key": RECIPIENT.hex(), "outcome": _outcome(long[:cut], DELIVERY, RECIPIENT)},
        ],
    }  # fmt: skip
    OUT.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {len(document['shares'])} shares, {len(document['refusals'])} refusals to {OUT}")


if __name__ == "__main__":
    main()
