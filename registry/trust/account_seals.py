"""An account's e-mail address and names at rest: sealed with the node's key
(registry/kernel/sealing.py), bound to the account, so the database holds neither in clear and a
sealed value moved to another account does not open."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registry.kernel.sealing import seal, unseal


def _bound_to(account_id: int, what: bytes = b"interops.account-email.v1") -> bytes:
    return what + b"\0" + str(account_id).encode()


def seal_email(aead: AESGCM, account_id: int, email: str) -> bytes:
    """The address sealed for the account's row (`declarants.email_sealed`)."""
    return seal(aead, email.encode(), _bound_to(account_id))


def open_email(aead: AESGCM, account_id: int, sealed: bytes) -> str:
    """The account's address; raises InvalidTag when it was altered or moved."""
    return unseal(aead, sealed, _bound_to(account_id)).decode()


_NAMES = b"interops.account-names.v1"


def seal_names(aead: AESGCM, account_id: int, names: tuple[str, str]) -> bytes:
    """The (last name, first name) as typed, sealed for the account's row
    (`declarants.names_sealed`), so that its company's administrators can tell accounts apart."""
    return seal(aead, "\0".join(names).encode(), _bound_to(account_id, _NAMES))


def open_names(aead: AESGCM, account_id: int, sealed: bytes) -> tuple[str, str]:
    """The account's (last name, first name); raises InvalidTag when altered or moved."""
    last, _, first = unseal(aead, sealed, _bound_to(account_id, _NAMES)).decode().partition("\0")
    return last, first
