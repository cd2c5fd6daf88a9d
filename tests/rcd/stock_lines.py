"""Lines of a synthetic StockEtablissement file, for the import tests."""

from __future__ import annotations

from registry.rcd.sirene_synth import ESTABLISHMENT_HEADER


def establishment_line(siret: str, **changes: str) -> str:
    """A clean line for the establishment `siret`, but for the changes (by column name)."""
    row = dict.fromkeys(ESTABLISHMENT_HEADER, "")
    row.update(
        siren=siret[:9], nic=siret[9:], siret=siret, statutDiffusionEtablissement="O",
        dateCreationEtablissement="2001-02-03", etablissementSiege="true",
        codePostalEtablissement="75008", libelleCommuneEtablissement="PARIS 8",
        dateDebut="2001-02-03", etatAdministratifEtablissement="A",
        activitePrincipaleEtablissement="69.20Z",
    )  # fmt: skip
    row.update(changes)
    return ",".join(row.values())
