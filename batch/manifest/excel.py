"""Workbook manifests: XLSX, old Excel (``.xls``) and LibreOffice (``.ods``); the sheet that
holds the manifest, its cells as text, its dates as dates.

XLSX:

* The archive is checked first (``archive``): sizes capped, merged ranges collected.
* The sheet: ``--sheet NAME``, else the first visible sheet whose first rows hold the official
  header (``Family Id``, ``Case Type`` and ``Files Names``, or ``Case Id`` for an update
  manifest), else the first visible sheet. A hidden sheet (an old one kept for reference) is
  read only when ``--sheet`` names it. Every problem names the sheet (``m.xlsx[Cases]:5: ...``).
* Hidden rows (hidden by hand, or filtered out) are not what a user meant to send: data rows
  among them are refused, named, unless asked for (``--include-hidden-rows``).
* Cells: a blank cell is an empty cell (Excel has no other); a date cell is ``YYYY-MM-DD`` (a
  date-time keeps its time of day, as in ``parquet``); a text cell is its text, even when it
  looks like a date. Row numbers are the sheet's.
* A merged range in the header or data rows is refused (``archive``).

XLS and ODS: fastexcel (calamine) reads both, and the same loader as for XLSX turns a sheet
into text cells:

* The sheet: ``--sheet NAME``, else the first visible sheet whose first rows hold the official
  header, else the first visible sheet. A hidden sheet is read only when ``--sheet`` names it.
  Every problem names the sheet (``m.ods[Cases]:5: ...``); row numbers are the sheet's.
* Cells: text as text, a date cell as ``YYYY-MM-DD`` (a date-time keeps its time of day).
* Size: an ``.ods`` is a zip archive, checked as an XLSX is (``archive``: the unpacked size
  capped, ``EMG_XLSX_MAX_MB``); an ``.xls`` holds its cells uncompressed, so its file size is
  capped by the same limit.
* Merged cells and hidden rows: an ``.ods`` says where they are (spanned cells and rows whose
  ``table:visibility`` is ``collapse`` or ``filter`` in ``content.xml``), and those in the
  header and data rows are refused, as in XLSX. An ``.xls`` keeps both in binary records
  that calamine does not expose: there they are not detected.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import fastexcel
import polars as pl

from batch.errors import ReadFailure
from batch.manifest.archive import (
    Archive,
    check_archive,
    check_formulas,
    check_merges,
    column_letters,
    hidden_sheets,
    limit_bytes,
    sheet_parts,
)
from batch.manifest.model import REQUIRED_COLUMNS
from batch.manifest.store import RawManifest, assemble
from batch.text import clip, quoted

#: How many rows of a sheet are searched for the header when choosing the sheet.
HEADER_ROWS = 50
# How a date cell reads when loaded as text (calamine's form); a text cell reading so stays.
_DATE_TEXT = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$"
# Excel's day 0: a cell holding only a time of day is a date-time on this day.
_DAY_ZERO = "1899-12-31"


def read_xlsx(path: Path, *, sheet: str | None = None,
              hidden_rows: bool = False) -> RawManifest:
    """Read the manifest sheet of a workbook (see the module docstring); *hidden_rows* reads
    hidden data rows (with a warning) instead of refusing them."""
    archive = check_archive(path)
    reader = _open(path)
    names = list(reader.sheet_names)
    hidden = hidden_sheets(archive)
    visible = [name for name in names if name not in hidden]
    loader = _Loader(reader, typed=archive.date_like_text)
    name, frame, first = _choose(loader, visible, sheet, every=names)
    try:
        raw = _assemble(frame)
    except ReadFailure as exc:
        exc.sheet = name
        raise
    raw.sheet, raw.sheets, raw.first_column = name, tuple(names), first
    raw.hidden_sheets = hidden
    check_merges(raw, _merges_of(archive, name))
    check_formulas(raw, _unsaved_formulas_of(archive, name))
    _check_hidden_rows(raw, _hidden_rows_of(archive, name), include=hidden_rows)
    return raw


#: Hidden rows named in a message; the rest are counted.
ROWS_NAMED = 10
INCLUDE_HIDDEN = "--include-hidden-rows"


def _unsaved_formulas_of(archive: Archive, name: str) -> list[str]:
    part = sheet_parts(archive).get(name, "")
    return next((cells for key, cells in archive.unsaved_formulas.items()
                 if key.lower() == part.lower()), [])


def _hidden_rows_of(archive: Archive, name: str) -> list[int]:
    part = sheet_parts(archive).get(name, "")
    return next((rows for key, rows in archive.hidden_rows.items()
                 if key.lower() == part.lower()), [])


def _check_hidden_rows(raw: RawManifest, hidden: list[int], *, include: bool) -> None:
    """Refuse the data rows of *raw* that the sheet hides, naming them; with *include*, read
    them and say so in a warning."""
    if not hidden:
        return
    lines = {raw.store.line(position) for position in range(len(raw.store))}
    rows = sorted(set(hidden) & lines)
    if not rows:
        return  # blank rows, or rows above the header: nothing that would be sent
    named = ", ".join(map(str, rows[:ROWS_NAMED]))
    more = f" and {len(rows) - ROWS_NAMED} more" if len(rows) > ROWS_NAMED else ""
    which = f"row {named} is" if len(rows) == 1 else f"rows {named}{more} are"
    if include:
        raw.warnings.append((f"{which} hidden in the sheet (hidden or filtered out); read as "
                             f"data ({INCLUDE_HIDDEN})", rows[0]))
        return
    raise ReadFailure(
        f"{which} hidden in the sheet (hidden or filtered out): hidden rows are not read as "
        "data unless asked", row=rows[0], sheet=raw.sheet,
        hint=f"unhide or delete them and save, or pass {INCLUDE_HIDDEN} to send them")


def _merges_of(archive: Archive, name: str) -> list[str]:
    """The merged ranges of sheet *name*; a sheet whose part cannot be found is refused, as
    its merged cells could not be checked."""
    part = sheet_parts(archive).get(name)
    merges = {key.lower(): value for key, value in archive.merges.items()}
    if part is None or part.lower() not in merges:
        raise ReadFailure(f"not a readable XLSX workbook (no part for the sheet {quoted(name)})",
                          sheet=name, hint="open it in Excel and save it again as .xlsx")
    return merges[part.lower()]


def _open(path: Path) -> Any:
    try:
        return fastexcel.read_excel(str(path))
    except Exception as exc:  # fastexcel raises its own error classes
        raise _unreadable(exc) from None


def _unreadable(exc: BaseException, sheet: str | None = None) -> ReadFailure:
    detail = clip(" ".join(str(exc).split()), 200)
    return ReadFailure(f"not a readable XLSX workbook ({detail})", sheet=sheet)


def _choose(loader: _Loader, names: list[str], wanted: str | None, *, every: list[str]
            ) -> tuple[str, pl.DataFrame, int]:
    """The sheet to read (*wanted*, any of *every*, or one of the visible *names*), its cells
    as text and the index of its first column."""
    if wanted is not None:
        name = _named(every, wanted)
        return name, *loader.load(name)
    if every and not names:
        listed = ", ".join(quoted(name) for name in every[:20])
        raise ReadFailure(f"every sheet of the workbook is hidden: {listed}",
                          hint="pass --sheet NAME to read a hidden sheet")
    found = _with_header(loader, names)
    if found is None:
        raise ReadFailure("the workbook has no sheets")
    return found


def _with_header(loader: _Loader, names: list[str]) -> tuple[str, pl.DataFrame, int] | None:
    """The first of the sheets *names* whose cells hold the manifest header, else the first
    of them (None when there is none): its name, cells and first column."""
    fallback: tuple[str, pl.DataFrame, int] | None = None
    for name in names:
        frame, first = loader.load(name)
        if has_header(frame):
            return name, frame, first
        fallback = fallback or (name, frame, first)
    return fallback


def _named(names: list[str], wanted: str) -> str:
    if wanted in names:
        return wanted
    folded = [name for name in names if name.casefold() == wanted.casefold()]
    if len(folded) == 1:
        return folded[0]
    listed = ", ".join(quoted(name) for name in names[:20])
    raise ReadFailure(f"the workbook has no sheet named {quoted(wanted)}; its sheets: {listed}",
                      hint="pass --sheet with one of these names")


class _Loader:
    """Sheets as text frames. A date cell loads as ``YYYY-MM-DD HH:MM:SS`` text; when some
    text in the workbook looks like that (*typed*), a second, typed load of the columns
    concerned says which cells are dates, so that a text cell stays as typed."""

    def __init__(self, reader: Any, *, typed: bool) -> None:
        self.reader = reader
        self.typed = typed

    def load(self, name: str) -> tuple[pl.DataFrame, int]:
        """The sheet's cells as text, and the index of its first column (0 = A)."""
        try:
            # skip_rows=0 keeps leading blank rows, so that row numbers are the sheet's.
            sheet = self.reader.load_sheet(name, header_row=None, dtypes="string", skip_rows=0)
            frame = pl.DataFrame(sheet)
            columns = [info.absolute_index for info in sheet.selected_columns]
            frame = self._dates(name, frame, columns)
        except Exception as exc:  # fastexcel raises its own error classes
            raise _unreadable(exc, name) from None
        return frame, columns[0] if columns else 0

    def _dates(self, name: str, frame: pl.DataFrame, columns: list[int]) -> pl.DataFrame:
        looks = frame.select(pl.all().str.contains(_DATE_TEXT).any()).row(0) if frame.width else ()
        wanted = [(label, index) for label, index, hit in zip(frame.columns, columns, looks,
                                                               strict=True) if hit]
        if not wanted:
            return frame
        masks = [pl.col(label).str.contains(_DATE_TEXT) for label, _ in wanted]
        if self.typed:
            typed = pl.DataFrame(self.reader.load_sheet(
                name, header_row=None, dtypes="datetime", skip_rows=0,
                use_columns=[index for _, index in wanted]))
            masks = [mask & pl.lit(value).is_not_null()
                     for mask, value in zip(masks, typed.get_columns(), strict=True)]
        return frame.with_columns(
            pl.when(mask).then(_date_text(pl.col(label))).otherwise(pl.col(label)).alias(label)
            for mask, (label, _) in zip(masks, wanted, strict=True))


def _date_text(text: pl.Expr) -> pl.Expr:
    """A date cell's text (``YYYY-MM-DD HH:MM:SS[.fff]``) as ``parquet`` writes date-times:
    ``YYYY-MM-DD`` at midnight; a time-only cell (on Excel's day 0) as its time of day."""
    day, clock = text.str.slice(0, 10), text.str.slice(11)
    return pl.when(clock == "00:00:00").then(day).when(day == _DAY_ZERO).then(clock).otherwise(text)


def has_header(frame: pl.DataFrame) -> bool:
    """Whether one of the first ``HEADER_ROWS`` rows names the official columns (or
    ``Case Id``, the key of an update manifest)."""
    for row in frame.head(HEADER_ROWS).iter_rows():
        cells = {cell.strip() for cell in row if cell}
        if "Case Id" in cells or cells.issuperset(REQUIRED_COLUMNS):
            return True
    return False


def _assemble(frame: pl.DataFrame) -> RawManifest:
    frame = frame.with_columns(pl.all().fill_null(""))
    if frame.width == 0:
        raise ReadFailure("the sheet is empty")
    official = bool((frame.get_column(frame.columns[0]).str.strip_chars() == "[Data]").any())
    rows = ((number, row) for number, row in enumerate(frame.iter_rows(), start=1))
    return assemble(rows, kind="xlsx", trim=True, data_row=official)


#: The workbook suffixes this module reads, and what people call them.
KINDS = {".xls": "old Excel .xls", ".ods": "LibreOffice .ods"}
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_HIDDEN_ROWS = ("collapse", "filter")
_HINT = "unhide the rows (or delete them) in the spreadsheet program, save, and run again"


def read_workbook(path: Path, *, sheet: str | None = None) -> RawManifest:
    """Read the manifest sheet of an ``.xls`` or ``.ods`` workbook (see the module
    docstring)."""
    suffix = path.suffix.lower()
    _check_size(path, suffix)
    reader = _open_workbook(path, suffix)
    names = list(reader.sheet_names)
    loader = _Loader(reader, typed=True)
    name, frame, first = _choose_in_workbook(reader, loader, names, sheet, suffix)
    try:
        raw = _assemble(frame)
    except ReadFailure as exc:
        exc.sheet = name
        raise
    raw.sheet, raw.sheets, raw.first_column = name, tuple(names), first
    if suffix == ".ods":
        layout = ods_layout(path, name)
        check_merges(raw, layout.merges)
        _check_sheet_hidden_rows(raw, layout.hidden)
    return raw


def _check_size(path: Path, suffix: str) -> None:
    if suffix == ".ods":
        check_archive(path)
        return
    size, limit = path.stat().st_size, limit_bytes()
    if size > limit:
        raise ReadFailure(
            f"the workbook is {size / 1e6:.0f} MB, more than the {limit / 1e6:.0f} MB limit",
            hint="save the manifest as CSV, split it, or raise the limit: "
                 "EMG_XLSX_MAX_MB=<megabytes>")


def _open_workbook(path: Path, suffix: str) -> Any:
    try:
        return fastexcel.read_excel(str(path))
    except Exception as exc:  # fastexcel raises its own error classes
        detail = clip(" ".join(str(exc).split()), 200)
        raise ReadFailure(f"not a readable {KINDS[suffix]} workbook ({detail})",
                          hint="open it and save it again, or save it as .xlsx") from None


def _choose_in_workbook(reader: Any, loader: _Loader, names: list[str], wanted: str | None,
            suffix: str) -> tuple[str, pl.DataFrame, int]:
    """The sheet to read (a hidden one only when named), its cells and first column."""
    if wanted is not None:
        name = _named(names, wanted)
        return name, *loader.load(name)
    found = _with_header(loader, [n for n in names if _visible(reader, n)])
    if found is None:
        hidden = f" ({len(names)} hidden: name one with --sheet)" if names else ""
        raise ReadFailure(f"the {KINDS[suffix]} workbook has no visible sheet{hidden}")
    return found


def _visible(reader: Any, name: str) -> bool:
    try:
        return str(reader.load_sheet(name, header_row=None, n_rows=0).visible) == "visible"
    except Exception:  # fastexcel raises its own error classes; the full load will say
        return True


@dataclass(slots=True)
class Layout:
    """What an ``.ods`` sheet's cells do not say: merged ranges and hidden rows."""

    merges: list[str] = field(default_factory=list)
    hidden: list[tuple[int, int]] = field(default_factory=list)  # first and last row


def ods_layout(path: Path, sheet: str) -> Layout:
    """The merged ranges (``A3:B3``) and hidden rows of *sheet*, from ``content.xml``."""
    layout = Layout()
    try:
        with zipfile.ZipFile(path) as archive, archive.open("content.xml") as content:
            for row, col, element in _cells(content, sheet, layout):
                down = int(element.get(f"{{{_TABLE}}}number-rows-spanned", "1"))
                across = int(element.get(f"{{{_TABLE}}}number-columns-spanned", "1"))
                if down > 1 or across > 1:
                    layout.merges.append(f"{column_letters(col - 1)}{row}:"
                                         f"{column_letters(col + across - 2)}{row + down - 1}")
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError, ValueError) as exc:
        raise ReadFailure(f"not a readable LibreOffice .ods workbook ({exc})", sheet=sheet,
                          hint="open it and save it again, or save it as .xlsx") from None
    return layout


def _cells(content: Any, sheet: str, layout: Layout) -> Iterator[tuple[int, int, Any]]:
    """(row, column, element) of each cell of *sheet* (1-based), noting its hidden rows."""
    inside, row, col = False, 1, 0
    for event, element in ElementTree.iterparse(content, events=("start", "end")):
        tag = element.tag.rpartition("}")[2]
        if tag == "table":
            inside = event == "start" and element.get(f"{{{_TABLE}}}name") == sheet
        elif not inside:
            pass
        elif tag == "table-row" and event == "start":
            col = 1
        elif tag == "table-row":
            repeat = int(element.get(f"{{{_TABLE}}}number-rows-repeated", "1"))
            if element.get(f"{{{_TABLE}}}visibility") in _HIDDEN_ROWS:
                layout.hidden.append((row, row + repeat - 1))
            row += repeat
        elif tag in ("table-cell", "covered-table-cell") and event == "end":
            yield row, col, element
            col += int(element.get(f"{{{_TABLE}}}number-columns-repeated", "1"))
        if event == "end" and tag in ("table-cell", "covered-table-cell", "table-row"):
            element.clear()


def _check_sheet_hidden_rows(raw: RawManifest, hidden: list[tuple[int, int]]) -> None:
    """Refuse hidden rows among the header and data rows: what is sent must be what is seen."""
    top = raw.header_row
    bottom = raw.store.line(len(raw.store) - 1) if len(raw.store) else top
    inside = [(max(a, top), min(b, bottom)) for a, b in hidden if a <= bottom and b >= top]
    if not inside:
        return
    first, last = inside[0]
    rows = f"row {first} is" if first == last else f"rows {first}-{last} are"
    more = f" (and {len(inside) - 1} more hidden ranges)" if len(inside) > 1 else ""
    raise ReadFailure(f"{rows} hidden{more}: a hidden row would be sent without being seen",
                      row=first, hint=_HINT, sheet=raw.sheet)
