"""Password hashes with scrypt, a memory-hard function: "scrypt$N$r$p$salt$hash" (base64)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os

COST = 2**15
BLOCK_SIZE = 8
PARALLELISM = 1
_MAX_MEMORY = 128 * 1024 * 1024


def _derive(password: str, salt: bytes, cost: int, block_size: int, parallelism: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=cost, r=block_size, p=parallelism,
        maxmem=_MAX_MEMORY, dklen=32,
    )  # fmt: skip


def hash_password(password: str, cost: int = COST) -> str:
    """A new salted hash of the password."""
    salt = os.urandom(16)
    derived = _derive(password, salt, cost, BLOCK_SIZE, PARALLELISM)
    encoded = [base64.b64encode(part).decode() for part in (salt, derived)]
    return f"scrypt${cost}${BLOCK_SIZE}${PARALLELISM}${encoded[0]}${encoded[1]}"


def check_password(password: str, stored: str) -> bool:
    """True when the password matches the stored hash (compared in constant time)."""
    try:
        scheme, cost, block_size, parallelism, salt, expected = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    derived = _derive(
        password, base64.b64decode(salt), int(cost), int(block_size), int(parallelism)
    )
    return hmac.compare_digest(derived, base64.b64decode(expected))


@functools.cache
def dummy_hash() -> str:
    """Checked against when the account does not exist, so that a sign-in takes as long
    either way."""
    return hash_password("no account has this password")
