"""What an organism sends back about a deposit: the receipt that acknowledges its delivery, and
its CRMs (comptes rendus métier) with the Net-CRM codes of its kind. (The validation's CCO or BAN
is the node's own return, stored with the validation.)"""

from __future__ import annotations

from enum import Enum, auto

from interops.token.v1 import token_pb2

from registry.dsn.deposit_store import DeliveryRecord
from token_suite.directory import KeyEntry
from token_suite.receipts import receipt_valid

# The Net-CRM codes each kind of organism posts.
CRM_CODES = {
    token_pb2.ORGANISM_KIND_CNAM: ("30", "31"),
    token_pb2.ORGANISM_KIND_FRANCE_TRAVAIL: ("40", "41"),
    token_pb2.ORGANISM_KIND_OC: ("50", "51"),
    token_pb2.ORGANISM_KIND_URSSAF: ("60", "61", "62"),
    token_pb2.ORGANISM_KIND_AGIRC_ARRCO: ("70", "71"),
    token_pb2.ORGANISM_KIND_DGFIP: ("92", "94"),
}


def crm_codes(organism: token_pb2.Organism | None) -> tuple[str, ...]:
    """The CRM codes an organism may post, by its kind (none for one the directory lacks)."""
    return CRM_CODES.get(organism.kind, ()) if organism is not None else ()


class ReceiptFault(Enum):
    """Why a receipt does not acknowledge a delivery (the service words each refusal)."""

    # A key that is not one of the delivery's organism's.
    NOT_ITS_KEY = auto()
    # Not a signature of the delivery's id and SHA-256 by that key, in the key's window.
    BAD_SIGNATURE = auto()


def receipt_fault(
    key: KeyEntry | None, delivery: DeliveryRecord, signature: bytes, moment: float
) -> ReceiptFault | None:
    """What is wrong with a receipt signed with `key` at `moment`; None when it acknowledges
    the delivery."""
    if key is None or key.organism != delivery.organism:
        return ReceiptFault.NOT_ITS_KEY
    if not key.signs_at(moment, 0) or not receipt_valid(
        key.public, delivery.id, delivery.sha256, signature
    ):
        return ReceiptFault.BAD_SIGNATURE
    return None
