"""A SEPA mandate as a PDF form to sign and keep (A4, fpdf2), with the mentions the EPC rulebooks
make mandatory (SDD Core and B2B rulebooks, "Mandate" data set DS-01): the title, the unique
mandate reference, the creditor's name, address and identifier (ICS), the debtor's name, address
(its establishment's, from the RCD), account (IBAN) and bank (BIC), the type of payment
(recurrent), the authorisation text with the debtor's right to a refund (Core) or its absence
(B2B), the place and date of signature, and the signature.

Text goes through the letters' printable() (the standard PDF fonts know Windows-1252 only).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from fpdf import FPDF
from interops.mandate.v1 import mandate_pb2 as pb

from registry.letters.pdf import french_date, printable
from registry.mandate.store import Creditor, MandateRecord

_ENCODING = "windows-1252"
_MARGIN = 18.0
_AUTHORISATION = (
    "En signant ce formulaire de mandat, vous autorisez (A) {creditor} à envoyer des instructions "
    "à votre banque pour débiter votre compte, et (B) votre banque à débiter votre compte "
    "conformément aux instructions de {creditor}."
)
_REFUND: dict[int, str] = {
    pb.SCHEME_CORE: (
        "Vous bénéficiez du droit d'être remboursé par votre banque selon les conditions décrites "
        "dans la convention que vous avez passée avec elle. Une demande de remboursement doit "
        "être présentée dans les 8 semaines suivant la date de débit de votre compte pour un "
        "prélèvement autorisé."
    ),
    pb.SCHEME_B2B: (
        "Ce mandat est destiné uniquement aux entreprises. Vous n'avez pas le droit d'être "
        "remboursé par votre banque une fois que votre compte a été débité, mais vous pouvez "
        "demander à votre banque de ne pas débiter votre compte jusqu'au jour où le paiement est "
        "dû."
    ),
}
_TITLE: dict[int, str] = {
    pb.SCHEME_CORE: "Mandat de prélèvement SEPA",
    pb.SCHEME_B2B: "Mandat de prélèvement SEPA interentreprises (B2B)",
}
_RIGHTS = ("Vos droits concernant le présent mandat sont expliqués dans un document que vous "
           "pouvez obtenir auprès de votre banque.")  # fmt: skip


def _grouped(iban: str) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def render(
    mandate: MandateRecord,
    creditor: Creditor,
    debtor_name: str,
    printed_on: date,
    debtor_address: Sequence[str] = (),
) -> bytes:
    """The mandate as an A4 PDF; an unknown address is left blank to fill in by hand."""
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.core_fonts_encoding = _ENCODING
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(auto=True, margin=_MARGIN)
    pdf.add_page()
    pdf.set_font("helvetica", style="B", size=14)
    pdf.multi_cell(0, 7, printable(_TITLE.get(mandate.scheme, _TITLE[pb.SCHEME_CORE])),
                   new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.ln(3)
    rows = [
        ("Référence unique du mandat (RUM)", mandate.reference),
        ("Créancier", creditor.name),
        ("Adresse du créancier", ", ".join(creditor.address.splitlines())),
        ("Identifiant créancier SEPA (ICS)", creditor.identifier),
        ("Débiteur", debtor_name or mandate.debtor),
        ("Adresse du débiteur", ", ".join(debtor_address)),
        ("SIREN / SIRET du débiteur", mandate.debtor),
        ("IBAN du débiteur", _grouped(mandate.iban)),
        ("BIC de la banque du débiteur", mandate.bic),
        ("Type de paiement", "Paiement récurrent / répétitif"),
        ("Date de signature", french_date(date.fromisoformat(mandate.signed_on))),
    ]
    for label, value in rows:
        pdf.set_font("helvetica", style="B", size=10)
        pdf.cell(70, 6.5, printable(label))
        pdf.set_font("helvetica", size=10)
        pdf.multi_cell(0, 6.5, printable(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("helvetica", size=9.5)
    body = "\n\n".join((_AUTHORISATION.format(creditor=creditor.name),
                        _REFUND.get(mandate.scheme, _REFUND[pb.SCHEME_CORE]), _RIGHTS))  # fmt: skip
    pdf.multi_cell(0, 5, printable(body), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("helvetica", size=10)
    pdf.cell(90, 6, printable("Fait à : ...................................."))
    pdf.cell(0, 6, printable("Le : ........................"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.cell(0, 6, printable("Signature du débiteur :"), new_x="LMARGIN", new_y="NEXT")
    pdf.rect(pdf.get_x(), pdf.get_y() + 1, 80, 28)
    pdf.ln(34)
    pdf.set_font("helvetica", size=8)
    pdf.multi_cell(0, 4, printable(
        f"Édité le {french_date(printed_on)} par le portail InterOPS. À retourner signé au "
        "créancier ; à conserver par le débiteur."
    ), new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    return bytes(pdf.output())
