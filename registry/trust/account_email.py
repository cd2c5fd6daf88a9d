"""An account's e-mail address at rest: sealed with the node's key (registry/kernel/sealing.py),
bound to the account, so the database holds no address in clear and a sealed address moved to
another account does not open."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registry.kernel.sealing import seal, unseal


def _bound_to(account_id: int) -> bytes:
    return b"interops.account-email.v1\0" + str(account_id).encode()


def seal_email(aead: AESGCM, account_id: int, email: str) -> bytes:
    """The address sealed for the account's row (`declarants.email_sealed`)."""
    return seal(aead, email.encode(), _bound_to(account_id))


def open_email(aead: AESGCM, account_id: int, sealed: bytes) -> str:
    """The account's address; raises InvalidTag when it was altered or moved."""
    return unseal(aead, sealed, _bound_to(account_id)).decode()
