"""CSV files people open in spreadsheets: every cell is read as data, never as a formula.

Every CSV Hub writes goes through `CsvWriter`, so a value someone else chose (an external id, a
provider's error text) cannot run as a formula in Excel, LibreOffice or Google Sheets.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

# OWASP "CSV Injection": a cell starting with one of these is a formula (tab, CR and LF too, as
# spreadsheets strip them first); Excel with an East Asian input method reads the full-width
# forms as the ASCII ones.
FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
# A plain decimal number (-5, +2.50) is kept as it is: these characters spell no formula.
_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def safe_cell(value: object) -> object:
    """`value`, or a text that could be read as a formula with a `'` in front, which makes a
    spreadsheet show it as text (OWASP's advice). Leading spaces do not hide a formula."""
    if (
        isinstance(value, str)
        and (value[:1] in FORMULA_STARTS or value.lstrip()[:1] in FORMULA_STARTS)
        and not _NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


class CsvWriter:
    """`csv.writer` (Excel dialect) with every cell made safe by `safe_cell`."""

    def __init__(self, stream: SupportsWrite[str]) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([safe_cell(value) for value in row])
