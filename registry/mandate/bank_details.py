"""The checks of a mandate's bank details, with python-stdnum rather than copies of its rules:

- the IBAN (ISO 13616): format per country and the mod-97 key (`stdnum.iban`), and a country
  of the SEPA schemes' geographical scope (SEPA_COUNTRIES: stdnum has no such list);
- the BIC (ISO 9362): 8 or 11 characters, bank, country, location, branch (`stdnum.bic`), its
  country the IBAN's (BIC_COUNTRY_EXCEPTIONS for the territories that bank under another
  country's IBAN);
- the creditor's SEPA identifier (ICS, EPC's AT-02): country, ISO 7064 mod 97-10 key computed
  over the national identifier then the country and key, skipping the 3-character business
  code (`stdnum.eu.at_02`); a French one is 13 characters (FR, key, business code, 6-character
  national number, as the Banque de France allots them).

A failure names its reason (the ErrorReason of the contract) and the field; never the value: an
IBAN is personal data, kept out of messages and logs.
"""

from __future__ import annotations

import re

from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.eu import at_02
from stdnum.exceptions import ValidationError

BAD_IBAN, BAD_BIC, BAD_CREDITOR_IDENTIFIER = "BAD_IBAN", "BAD_BIC", "BAD_CREDITOR_IDENTIFIER"
UNKNOWN_BANK = "UNKNOWN_BANK"
IBAN_NOT_SEPA, BIC_COUNTRY_MISMATCH = "IBAN_NOT_SEPA", "BIC_COUNTRY_MISMATCH"
# The IBAN countries of the SEPA schemes' geographical scope (EPC409, "List of countries of the
# SEPA schemes' geographical scope", 2025): the EU, the EEA, Switzerland, the United Kingdom,
# Monaco, San Marino, Vatican City, Andorra, the Crown Dependencies and Gibraltar, Albania,
# Montenegro, Moldova, North Macedonia. French overseas departments and collectivities, the
# Åland Islands, the Canary Islands, the Azores, Madeira bank under FR, FI, ES and PT IBANs.
SEPA_COUNTRIES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",  # the EU
    "IS", "LI", "NO", "CH", "GB", "MC", "SM", "VA", "AD", "GI", "GG", "JE", "IM",
    "AL", "ME", "MD", "MK",
})  # fmt: skip
# A BIC's country is its IBAN's, except where a territory's banks have a BIC of their own
# country code under the IBAN of another (kept to the cases the EPC list names).
BIC_COUNTRY_EXCEPTIONS = {
    "FR": frozenset(["GF", "GP", "MQ", "RE", "YT", "PM", "BL", "MF", "MC", "NC", "PF", "WF"]),
    "MC": frozenset({"FR"}),
    "GB": frozenset({"GG", "JE", "IM"}),
    "FI": frozenset({"AX"}),
}
_FRENCH_ICS_LENGTH = 13
# stdnum checks the key only: the shape is the country, the key digits, the business code and
# the national identifier, at most 35 characters in all (EPC AT-02).
_ICS_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{3}[A-Z0-9]{1,28}").fullmatch


class BankDetailsError(ValueError):
    """Bank details refused: the reason (an ErrorReason name) and the field at fault."""

    def __init__(self, reason: str, field: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


def check_iban(value: str) -> str:
    """The IBAN in its compact form (no spaces, upper case); BAD_IBAN when its country format
    or its mod-97 key is wrong, IBAN_NOT_SEPA when its country is not in SEPA."""
    try:
        compact = str(stdnum_iban.validate(value))
    except ValidationError:
        raise BankDetailsError(BAD_IBAN, "iban", "the IBAN is not valid (format or key)") from None
    if compact[:2] not in SEPA_COUNTRIES:
        raise BankDetailsError(IBAN_NOT_SEPA, "iban", "the IBAN's country is not in SEPA")
    return compact


def check_bic(value: str) -> str:
    """The BIC in upper case; BAD_BIC when it is not 8 or 11 characters of the ISO 9362 shape."""
    try:
        return str(stdnum_bic.validate(value))
    except ValidationError:
        raise BankDetailsError(BAD_BIC, "bic", "the BIC is not valid") from None


def check_bic_country(iban: str, bic: str) -> None:
    """BIC_COUNTRY_MISMATCH when the (checked) BIC's country is not the (checked) IBAN's."""
    country = bic[4:6]
    if country != iban[:2] and country not in BIC_COUNTRY_EXCEPTIONS.get(iban[:2], ()):
        raise BankDetailsError(BIC_COUNTRY_MISMATCH, "bic", "the BIC's country is not the IBAN's")


def check_creditor_identifier(value: str) -> str:
    """The creditor identifier (ICS) compacted; BAD_CREDITOR_IDENTIFIER when its key or, for a
    French one, its length is wrong."""
    try:
        compact = str(at_02.validate(value))
    except ValidationError:
        compact = ""
    if not _ICS_SHAPE(compact) or (compact.startswith("FR") and len(compact) != _FRENCH_ICS_LENGTH):
        raise BankDetailsError(
            BAD_CREDITOR_IDENTIFIER,
            "creditor_identifier",
            "the SEPA creditor identifier is not valid (format or key)",
        )
    return compact


def french_bank_code(iban: str) -> str | None:
    """The bank code (code banque, 5 digits) of a compact French or Monaco IBAN, else None."""
    return iban[4:9] if iban[:2] in ("FR", "MC") else None


def masked(iban: str) -> str:
    """The IBAN as people may see it in a list: its country and last four characters."""
    return f"{iban[:4]} **** {iban[-4:]}"
