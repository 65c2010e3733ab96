"""Formula safety for CSV files that people open in a spreadsheet program.

A CSV cell (or header) starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
run as a formula by Excel, LibreOffice and Google Sheets. Every CSV that holds server or
manifest text goes through here: such text gets a leading ``'`` (OWASP's advice against CSV
injection), which a spreadsheet shows as text and a person reads as the value. One rule, two
forms: :func:`formula_safe` for one cell, :func:`csv_safe` for a whole table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from batch.outputs.files import FORMULA_START

if TYPE_CHECKING:
    import polars as pl

QUOTE = "'"
#: The same characters as ``FORMULA_START``, as one pattern for the vectorised form (hex
#: escapes: a tab or ``-`` inside a class needs no further thought).
FORMULA_PATTERN = "^[" + "".join(f"\\x{ord(c):02X}" for c in FORMULA_START) + "]"


def formula_safe(text: str) -> str:
    """*text*, with a leading ``'`` when a spreadsheet would run it as a formula."""
    return QUOTE + text if text.startswith(FORMULA_START) else text


def csv_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """*frame* ready for a CSV: every text cell and every header made formula-safe.

    Numbers, dates and flags are left alone (they are never formulas); headers that would
    collide once quoted (``=a`` and ``'=a``) keep the first and number the others.
    """
    import polars as pl  # here, so that a command writing no table never loads polars

    cells = frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA_PATTERN))
        .then(pl.lit(QUOTE) + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    )
    return cells.rename(dict(zip(frame.columns, unique(map(formula_safe, frame.columns)),
                                 strict=True)))


def unique(names: Iterable[str]) -> list[str]:
    """*names* in order, a later duplicate renamed ``name (2)``, ``name (3)``, ..."""
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name} ({n})"
        seen.add(candidate)
        out.append(candidate)
    return out
