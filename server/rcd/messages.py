"""Conversions between the RCD's records and the interops.registry.v1 messages."""

from __future__ import annotations

from datetime import date

from google.type import date_pb2
from interops.registry.v1 import registry_pb2 as pb

from registry.rcd.records import CompanyRecord, EstablishmentRecord
from registry.rcd.sirene_stock import StockKind

STOCK_KINDS = {
    pb.STOCK_KIND_COMPANIES: StockKind.COMPANIES,
    pb.STOCK_KIND_ESTABLISHMENTS: StockKind.ESTABLISHMENTS,
}
STOCK_KIND_MESSAGES = {kind: number for number, kind in STOCK_KINDS.items()}


def _date(value: date | None) -> date_pb2.Date | None:
    if value is None:
        return None
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def company_message(record: CompanyRecord) -> pb.Company:
    """The Company message of a record."""
    return pb.Company(
        siren=record.siren,
        name=record.name,
        naf_code=record.naf_code,
        legal_category=record.legal_category,
        state=pb.AdministrativeState.ValueType(record.state),
        creation_date=_date(record.creation_date),
        state_since=_date(record.state_since),
        head_office_nic=record.head_office_nic,
        diffusion_restricted=record.diffusion_restricted,
    )


def establishment_message(record: EstablishmentRecord) -> pb.Establishment:
    """The Establishment message of a record."""
    return pb.Establishment(
        siret=record.siret,
        siren=record.siret[:9],
        nic=record.siret[9:],
        name=record.name,
        naf_code=record.naf_code,
        address=pb.Address(
            street_number=record.street_number,
            street_number_suffix=record.street_number_suffix,
            street_type=record.street_type,
            street_name=record.street_name,
            complement=record.complement,
            postal_code=record.postal_code,
            city=record.city,
            city_code=record.city_code,
            country=record.country,
        ),
        head_office=record.head_office,
        state=pb.AdministrativeState.ValueType(record.state),
        creation_date=_date(record.creation_date),
        state_since=_date(record.state_since),
        diffusion_restricted=record.diffusion_restricted,
    )
