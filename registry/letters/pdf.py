"""One postal letter as a PDF file (A4, fpdf2): the sender (the portal) at the top left, the
recipient's address where the window of a French DL envelope (110 x 220 mm, window 45 x 100 mm
on the right) shows it once the sheet is folded in three, then the date, the reference, the
subject and the body; fold marks in the left margin.

The PDF's standard fonts know only the Windows-1252 characters (French's included); any other
character of an RCD name is written without its accent, or as '?'.
"""

from __future__ import annotations

import unicodedata
from datetime import date

from fpdf import FPDF

from registry.letters.store import Letter

# Who the letter is from.
SENDER = ("Portail InterOPS", "Service des courriers")
_ENCODING = "windows-1252"
# Letters that Unicode does not decompose into a base letter and an accent.
_BARE = str.maketrans({"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i"})
_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre")  # fmt: skip
# Millimetres from the sheet's top left corner.
_MARGIN = 20.0
_WINDOW_X, _WINDOW_Y, _WINDOW_WIDTH = 110.0, 50.0, 85.0
_DATE_Y = 95.0
_TEXT_Y = 108.0
_FOLDS = (99.0, 198.0)


def french_date(day: date) -> str:
    """'4 décembre 2026'."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def printable(text: str) -> str:
    """The text in the standard fonts' characters: accents dropped, then '?', where needed."""
    try:
        text.encode(_ENCODING)
    except UnicodeEncodeError:
        return "".join(_printable_char(char) for char in text)
    return text


def _printable_char(char: str) -> str:
    try:
        char.encode(_ENCODING)
    except UnicodeEncodeError:
        bare = "".join(
            c
            for c in unicodedata.normalize("NFKD", char.translate(_BARE))
            if not unicodedata.combining(c)
        )
        try:
            return bare.encode(_ENCODING).decode(_ENCODING) or "?"
        except UnicodeEncodeError:
            return "?"
    return char


def render(letter: Letter, printed_on: date) -> bytes:
    """The letter as a one-page (or more) A4 PDF, dated `printed_on`."""
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.core_fonts_encoding = _ENCODING
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(auto=True, margin=_MARGIN)
    pdf.add_page()
    _sender(pdf)
    _address(pdf, letter.recipient.address_lines())
    pdf.set_font("helvetica", size=10)
    pdf.set_xy(_WINDOW_X, _DATE_Y)
    pdf.cell(_WINDOW_WIDTH, 5, printable(f"Le {french_date(printed_on)}"))
    pdf.set_xy(_MARGIN, _TEXT_Y)
    pdf.set_font("helvetica", size=9)
    pdf.cell(0, 5, f"Réf. : courrier n° {letter.id} - SIRET {letter.siret}",
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.ln(2)
    pdf.set_font("helvetica", style="B", size=10.5)
    pdf.multi_cell(0, 5.5, printable(f"Objet : {letter.subject}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.set_font("helvetica", size=10.5)
    pdf.multi_cell(0, 5.5, printable(letter.body), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.multi_cell(0, 5.5, printable(SENDER[0]), align="R")
    return bytes(pdf.output())


def _sender(pdf: FPDF) -> None:
    pdf.set_xy(_MARGIN, _MARGIN)
    pdf.set_font("helvetica", style="B", size=11)
    pdf.cell(80, 5.5, printable(SENDER[0]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    for line in SENDER[1:]:
        pdf.cell(80, 4.5, printable(line), new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(150)
    for y in _FOLDS:
        pdf.line(4, y, 9, y)


def _address(pdf: FPDF, lines: list[str]) -> None:
    """The address block, in the window: at most six lines of 38 characters (La Poste's rule)
    fit its 45 mm at this size; a longer line shrinks the font rather than wrap."""
    pdf.set_xy(_WINDOW_X, _WINDOW_Y)
    for line in lines:
        text = printable(line)
        size = 10.0
        pdf.set_font("helvetica", size=size)
        while pdf.get_string_width(text) > _WINDOW_WIDTH and size > 6:
            size -= 0.5
            pdf.set_font("helvetica", size=size)
        pdf.set_x(_WINDOW_X)
        pdf.cell(_WINDOW_WIDTH, 5, text, new_x="LEFT", new_y="NEXT")
