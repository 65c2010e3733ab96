"""Safe, typed XLSX sheets for people who open spreadsheets, not terminals.

Every sheet is a table: a frozen, filtered header row, columns sized to their content (capped),
numbers written as numbers, times as real dates, links as real hyperlinks and rows of failed or
uncertain families filled with a colour. Manifest values are data, never formulas: the workbook
is opened with xlsxwriter's string conversions turned off and every text cell is written with
``write_string``, so ``=HYPERLINK(...)``, ``+1``, ``-2`` or ``@SUM(A1)`` stay text.

Sheets are streamed row by row (xlsxwriter's ``constant_memory`` mode), so a workbook of
100,000 families does not hold every cell in memory; each sheet is written top to bottom.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from batch.outputs.files import atomic_path

Kind = Literal["text", "int", "float", "datetime", "link", "any"]
Fill = Literal["failed", "unknown"] | None

# Excel refuses more hyperlinks than this on one sheet; later links are written as plain text.
MAX_LINKS = 65_530
# Excel's cell limit for text.
MAX_TEXT = 32_767
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
FILL_COLOURS = {"failed": "#F8CBAD", "unknown": "#FFE699"}
HEADER_COLOUR = "#D9E1F2"

#: Formats of the Summary's prose: its one-sentence verdict, section headings, wrapped text.
PROSE: dict[str, dict[str, Any]] = {
    "title": {"bold": True, "font_size": 13, "text_wrap": True, "valign": "top"},
    "heading": {"bold": True, "font_size": 11, "bottom": 1},
    "wrap": {"text_wrap": True, "valign": "top"},
    "internal": {"font_color": "blue", "underline": 1, "valign": "top"},
    "label": {"valign": "top"},
    "count": {"align": "left", "valign": "top", "num_format": "#,##0"},
    "when": {"align": "left", "valign": "top", "num_format": DATETIME_FORMAT},
}

# The options that keep manifest values as data (see the module docstring).
SAFE_OPTIONS: dict[str, Any] = {
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    "constant_memory": True,
}


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a sheet: its header, how its cells are typed and its widest width."""

    name: str
    kind: Kind = "text"
    max_width: int = 60


class Formats:
    """The cell formats of one workbook, made once per (kind, fill, header)."""

    def __init__(self, book: Any) -> None:
        self._book = book
        self._cache: dict[tuple[str, Fill], Any] = {}

    def get(self, kind: str, fill: Fill = None) -> Any:
        """The format for a cell of *kind* in a row with *fill*."""
        key = (kind, fill)
        if key not in self._cache:
            props: dict[str, Any] = {}
            if kind == "datetime":
                props["num_format"] = DATETIME_FORMAT
            elif kind == "link":
                props.update(font_color="blue", underline=1)
            elif kind == "header":
                props.update(bold=True, bg_color=HEADER_COLOUR, border=1)
            else:
                props.update(PROSE.get(kind, {}))
            if fill is not None:
                props["bg_color"] = FILL_COLOURS[fill]
            self._cache[key] = self._book.add_format(props)
        return self._cache[key]


class Sheet:
    """One table sheet, written row by row; :meth:`finish` sizes, freezes and filters it."""

    def __init__(self, book: Any, formats: Formats, name: str, columns: Sequence[Column]) -> None:
        self._ws = book.add_worksheet(name)
        self._formats = formats
        self.columns = tuple(columns)
        self._widths = [len(c.name) + 2 for c in self.columns]
        self._links = 0
        self.rows = 0
        header = formats.get("header")
        for col, column in enumerate(self.columns):
            self._ws.write_string(0, col, column.name, header)

    @property
    def worksheet(self) -> Any:
        """The xlsxwriter worksheet (to draw a chart on it)."""
        return self._ws

    @property
    def name(self) -> str:
        """The sheet's name."""
        return str(self._ws.name)

    def add(self, values: Sequence[object], *, fill: Fill = None) -> None:
        """Append one row; ``None`` is an empty cell (still filled when the row is)."""
        self.rows += 1
        for col, (column, value) in enumerate(zip(self.columns, values, strict=True)):
            self._write(self.rows, col, column.kind, value, fill)

    def _write(self, row: int, col: int, kind: Kind, value: object, fill: Fill) -> None:
        ws, fmt = self._ws, self._formats.get(kind, fill)
        if value is None or value == "":
            if fill is not None:
                ws.write_blank(row, col, None, fmt)
            return
        if kind == "any":
            kind = _kind_of(value)
            fmt = self._formats.get(kind, fill)
            value = ("yes" if value else "no") if isinstance(value, bool) else value
        if kind in ("int", "float") and isinstance(value, int | float):
            ws.write_number(row, col, value, fmt)
            text = f"{value:g}" if isinstance(value, float) else str(value)
        elif kind == "datetime" and isinstance(value, datetime):
            ws.write_datetime(row, col, value, fmt)
            text = "0000-00-00 00:00:00"
        elif kind == "link" and self._links < MAX_LINKS:
            self._links += 1
            text = str(value)
            ws.write_url(row, col, text, fmt, string=text[:MAX_TEXT])
        else:
            text = str(value)[:MAX_TEXT]
            ws.write_string(row, col, text, self._formats.get("text", fill))
        self._widths[col] = max(self._widths[col], len(text) + 2)

    def finish(self) -> None:
        """Size the columns, freeze the header, turn the filter on and set up printing."""
        widths = [min(w, c.max_width) for w, c in zip(self._widths, self.columns, strict=True)]
        for col, width in enumerate(widths):
            self._ws.set_column(col, col, width)
        self._ws.freeze_panes(1, 0)
        self._ws.autofilter(0, 0, max(self.rows, 1), max(len(self.columns) - 1, 0))
        print_setup(self._ws, sum(widths))
        self._ws.repeat_rows(0)  # the header on every printed page


#: Columns wider than this (in characters) in all print in landscape.
PORTRAIT_WIDTH = 95


def print_setup(worksheet: Any, width: float) -> None:
    """Print *worksheet* one page wide (as many pages long as it takes), in landscape when its
    columns add up to more than a portrait page holds: a sheet printed as it is spreads its
    columns over pages of their own (20 pages for 3 families)."""
    worksheet.fit_to_pages(1, 0)
    if width > PORTRAIT_WIDTH:
        worksheet.set_landscape()


def _kind_of(value: object) -> Kind:
    """The cell type of a value in a column of mixed values."""
    if isinstance(value, bool):
        return "text"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "datetime" if isinstance(value, datetime) else "text"


def write_workbook(out: Path, build: Callable[[Any, Formats], None]) -> Path:
    """Create the workbook *out* safely: *build* adds sheets, the file appears only when done."""
    import xlsxwriter  # here, so that a command writing no workbook never loads it

    with atomic_path(out) as tmp:
        book = xlsxwriter.Workbook(str(tmp), SAFE_OPTIONS)
        try:
            build(book, Formats(book))
        finally:
            book.close()
    return out


def add_sheet(
    book: Any,
    formats: Formats,
    name: str,
    columns: Sequence[Column],
    rows: Iterator[tuple[Sequence[object], Fill]] | Sequence[tuple[Sequence[object], Fill]],
) -> Sheet:
    """Add a whole table sheet from (values, fill) pairs."""
    sheet = Sheet(book, formats, name, columns)
    for values, fill in rows:
        sheet.add(values, fill=fill)
    sheet.finish()
    return sheet
