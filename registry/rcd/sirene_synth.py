"""Realistic synthetic Sirene stock files with valid SIREN/SIRET keys, for tests and benchmarks.

The files have INSEE's real column layouts (StockUniteLegale, StockEtablissement), so they go
through exactly the import path a real stock file takes. The output is a function of the seed.

    python -m registry.rcd.sirene_synth --establishments 1000000 --out var/stock
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from registry.rcd.identifiers import LA_POSTE_SIREN, luhn_complete

COMPANY_HEADER = [
    "siren",
    "statutDiffusionUniteLegale",
    "unitePurgeeUniteLegale",
    "dateCreationUniteLegale",
    "sigleUniteLegale",
    "sexeUniteLegale",
    "prenom1UniteLegale",
    "prenom2UniteLegale",
    "prenom3UniteLegale",
    "prenom4UniteLegale",
    "prenomUsuelUniteLegale",
    "pseudonymeUniteLegale",
    "identifiantAssociationUniteLegale",
    "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale",
    "dateDernierTraitementUniteLegale",
    "nombrePeriodesUniteLegale",
    "categorieEntreprise",
    "anneeCategorieEntreprise",
    "dateDebut",
    "etatAdministratifUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "denominationUniteLegale",
    "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale",
    "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale",
    "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale",
    "societeMissionUniteLegale",
    "caractereEmployeurUniteLegale",
]

ESTABLISHMENT_HEADER = [
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "activitePrincipaleRegistreMetiersEtablissement",
    "dateDernierTraitementEtablissement",
    "etablissementSiege",
    "nombrePeriodesEtablissement",
    "complementAdresseEtablissement",
    "numeroVoieEtablissement",
    "indiceRepetitionEtablissement",
    "dernierNumeroVoieEtablissement",
    "indiceRepetitionDernierNumeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "libelleCommuneEtrangerEtablissement",
    "distributionSpecialeEtablissement",
    "codeCommuneEtablissement",
    "codeCedexEtablissement",
    "libelleCedexEtablissement",
    "codePaysEtrangerEtablissement",
    "libellePaysEtrangerEtablissement",
    "identifiantAdresseEtablissement",
    "coordonneeLambertAbscisseEtablissement",
    "coordonneeLambertOrdonneeEtablissement",
    "dateDebut",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "enseigne2Etablissement",
    "enseigne3Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "caractereEmployeurEtablissement",
]

# (postal code, commune, INSEE commune code)
CITIES = [
    ("75008", "PARIS 8", "75108"), ("75011", "PARIS 11", "75111"), ("69003", "LYON 3EME", "69383"),
    ("13001", "MARSEILLE 1ER", "13201"), ("31000", "TOULOUSE", "31555"),
    ("44000", "NANTES", "44109"), ("59000", "LILLE", "59350"), ("33000", "BORDEAUX", "33063"),
    ("67000", "STRASBOURG", "67482"), ("35000", "RENNES", "35238"),
    ("34000", "MONTPELLIER", "34172"), ("06000", "NICE", "06088"),
    ("20000", "AJACCIO", "2A004"), ("97400", "SAINT-DENIS", "97411"),
]  # fmt: skip
ACTIVITIES = [
    ("69.20Z", "CABINET"), ("47.11D", "SUPERETTE"), ("56.10A", "RESTAURANT"),
    ("43.21A", "ELECTRICITE"), ("62.01Z", "INFORMATIQUE"), ("10.71C", "BOULANGERIE"),
    ("49.41A", "TRANSPORTS"), ("86.21Z", "CABINET MEDICAL"), ("96.02A", "COIFFURE"),
    ("41.20A", "CONSTRUCTION"), ("85.59A", "FORMATION"), ("45.20A", "GARAGE"),
]  # fmt: skip
LEGAL_FORMS = [("5710", "SAS"), ("5499", "SARL"), ("5498", "EURL"), ("5599", "SA")]
SURNAMES = [
    "MARTIN",
    "BERNARD",
    "THOMAS",
    "PETIT",
    "ROBERT",
    "RICHARD",
    "DURAND",
    "DUBOIS",
    "MOREAU",
    "LAURENT",
    "SIMON",
    "MICHEL",
    "LEFEBVRE",
    "LEROY",
    "ROUX",
    "DAVID",
    "BERTRAND",
    "MOREL",
    "FOURNIER",
    "GIRARD",
    "BONNET",
    "DUPONT",
    "LAMBERT",
    "FONTAINE",
    "ROUSSEAU",
    "VINCENT",
    "MULLER",
    "LEFEVRE",
    "FAURE",
    "ANDRE",
    "MERCIER",
    "BLANC",
    "GUERIN",
    "BOYER",
    "GARNIER",
    "CHEVALIER",
]
FIRST_NAMES = [
    "JEAN",
    "MARIE",
    "PIERRE",
    "ANNE",
    "LUC",
    "CLAIRE",
    "PAUL",
    "SOPHIE",
    "LOUIS",
    "JULIE",
    "HELENE",
    "ETIENNE",
]
PLACES = ["DU MIDI", "DES ALPES", "DE L'OUEST", "DU LAC", "DES HALLES", "DE LA GARE", "D'AZUR"]
STREET_TYPES = ["RUE", "AV", "BD", "PL", "CHE", "IMP", "ALL", "QUAI"]
STREET_NAMES = [
    "DE LA REPUBLIQUE", "VICTOR HUGO", "JEAN JAURES", "DU GENERAL DE GAULLE", "PASTEUR",
    "DES LILAS", "DE LA PAIX", "GAMBETTA", "NATIONALE", "DU MARECHAL FOCH", "D'ALSACE",
]  # fmt: skip


@dataclass(frozen=True)
class StockFiles:
    """The two files written, and the identifiers they hold."""

    companies: Path
    establishments: Path
    sirens: list[str]
    sirets: list[str]


def siren_at(index: int) -> str:
    """The index-th synthetic SIREN (valid Luhn key), never La Poste's."""
    return luhn_complete(f"{10_000_000 + index * 7:08d}")


def siret_of(siren: str, number: int) -> str:
    """The number-th establishment's SIRET of a company (valid key, La Poste rule included)."""
    if siren != LA_POSTE_SIREN:
        return luhn_complete(f"{siren}{number:04d}")
    for last in "0123456789":  # La Poste: the 14 digits sum to a multiple of 5
        candidate = f"{siren}{number:04d}{last}"
        if sum(map(int, candidate)) % 5 == 0:
            return candidate
    raise AssertionError("unreachable: two digits in ten fit")


def _date(rng: random.Random, first_year: int, last_year: int) -> str:
    return f"{rng.randint(first_year, last_year)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _companies(count: int, rng: random.Random, start: int = 0) -> Iterator[tuple[list[str], int]]:
    """(company row, its number of establishments) for each company, numbered from `start`."""
    for index in range(start, start + count):
        siren = LA_POSTE_SIREN if index == 3 else siren_at(index)
        naf, trade = rng.choice(ACTIVITIES)
        person = rng.random() < 0.15
        surname, first = rng.choice(SURNAMES), rng.choice(FIRST_NAMES)
        form_code, form = ("1000", "") if person else rng.choice(LEGAL_FORMS)
        name = "" if person else f"{trade} {surname} {rng.choice(PLACES)} {form}".strip()
        if index == 0:
            name, naf, form_code = "CABINET DUPONT EXPERTISE COMPTABLE", "69.20Z", "5710"
        if index == 3:
            name, naf, form_code, person = "LA POSTE", "53.10Z", "5510", False
        ceased = index > 3 and rng.random() < 0.08
        restricted = person and rng.random() < 0.2
        created = _date(rng, 1950, 2025)
        row = dict.fromkeys(COMPANY_HEADER, "")
        row.update(
            siren=siren,
            statutDiffusionUniteLegale="P" if restricted else "O",
            unitePurgeeUniteLegale="false",
            dateCreationUniteLegale=created,
            prenom1UniteLegale=first if person else "",
            prenomUsuelUniteLegale=first if person else "",
            sexeUniteLegale=rng.choice("MF") if person else "",
            nomUniteLegale=surname if person else "",
            denominationUniteLegale=name,
            categorieJuridiqueUniteLegale=form_code,
            activitePrincipaleUniteLegale=naf,
            nomenclatureActivitePrincipaleUniteLegale="NAFRev2",
            nicSiegeUniteLegale=siret_of(siren, 1)[9:],
            dateDebut=_date(rng, 2020, 2025) if ceased else created,
            etatAdministratifUniteLegale="C" if ceased else "A",
            caractereEmployeurUniteLegale="O",
            dateDernierTraitementUniteLegale="2026-10-01T03:12:45",
            nombrePeriodesUniteLegale="1",
        )
        yield list(row.values()), 1 if person else 1 + int(rng.expovariate(0.7))


def _establishment(company: list[str], number: int, rng: random.Random) -> list[str]:
    siren, restricted, created, ceased = company[0], company[1] == "P", company[3], company[20]
    siret = siret_of(siren, number)
    postal_code, city, city_code = rng.choice(CITIES)
    closed = ceased == "C" or (number > 1 and rng.random() < 0.1)
    row = dict.fromkeys(ESTABLISHMENT_HEADER, "")
    row.update(
        siren=siren,
        nic=siret[9:],
        siret=siret,
        statutDiffusionEtablissement="P" if restricted else "O",
        dateCreationEtablissement=created if number == 1 else _date(rng, int(created[:4]), 2025),
        etablissementSiege="true" if number == 1 else "false",
        numeroVoieEtablissement=str(rng.randint(1, 180)),
        indiceRepetitionEtablissement=rng.choice(["", "", "", "B"]),
        typeVoieEtablissement=rng.choice(STREET_TYPES),
        libelleVoieEtablissement=rng.choice(STREET_NAMES),
        codePostalEtablissement=postal_code,
        libelleCommuneEtablissement=city,
        codeCommuneEtablissement=city_code,
        dateDebut=_date(rng, 2020, 2025) if closed else created,
        etatAdministratifEtablissement="F" if closed else "A",
        enseigne1Etablissement=rng.choice(["", "", " ".join(f"{company[23][:20]} {city}".split())]),
        activitePrincipaleEtablissement=company[28],
        nomenclatureActivitePrincipaleEtablissement="NAFRev2",
        caractereEmployeurEtablissement="O",
        dateDernierTraitementEtablissement="2026-10-01T03:12:45",
        nombrePeriodesEtablissement="1",
    )
    return list(row.values())


def write_stock(out_dir: Path, establishments: int, seed: int = 0, first: int = 0) -> StockFiles:
    """Writes StockUniteLegale.csv and StockEtablissement.csv with about that many
    establishments, of companies numbered from `first` (siren_at)."""
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = StockFiles(out_dir / "StockUniteLegale.csv", out_dir / "StockEtablissement.csv", [], [])
    with (
        files.companies.open("w", newline="", encoding="utf-8") as company_file,
        files.establishments.open("w", newline="", encoding="utf-8") as establishment_file,
    ):
        company_csv = csv.writer(company_file, lineterminator="\n")
        establishment_csv = csv.writer(establishment_file, lineterminator="\n")
        company_csv.writerow(COMPANY_HEADER)
        establishment_csv.writerow(ESTABLISHMENT_HEADER)
        written = 0
        for company, count in _companies(establishments, rng, first):
            if written >= establishments:
                break
            company_csv.writerow(company)
            files.sirens.append(company[0])
            for number in range(1, min(count, establishments - written) + 1):
                row = _establishment(company, number, rng)
                establishment_csv.writerow(row)
                files.sirets.append(row[2])
            written += count
    return files


def main() -> None:
    """Command line: write synthetic stock files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--establishments", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0, help="number companies from this index "
                        "(the demo data holds 0 to about 1,000)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("var/stock"))
    args = parser.parse_args()
    files = write_stock(args.out, args.establishments, args.seed, args.first)
    print(f"{len(files.sirens)} companies -> {files.companies}")
    print(f"{len(files.sirets)} establishments -> {files.establishments}")


if __name__ == "__main__":
    main()
