"""XLSX manifests: the sheet that holds the manifest, its cells as text, its dates as dates.

* The archive is checked first (``archive``): sizes capped, merged ranges collected.
* The sheet: ``--sheet NAME``, else the first visible sheet whose first rows hold the official
  header (``Family Id``, ``Case Type`` and ``Files Names``, or ``Case Id`` for an update
  manifest), else the first visible sheet. A hidden sheet (an old one kept for reference) is
  read only when ``--sheet`` names it. Every problem names the sheet (``m.xlsx[Cases]:5: ...``).
* Hidden rows (hidden by hand, or filtered out) are not what a user meant to send: data rows
  among them are refused, named, unless asked for (``--include-hidden-rows``).
* Cells: a blank cell is an empty cell (Excel has no other); a date cell is ``YYYY-MM-DD`` (a
  date-time keeps its time of day, as in ``frames``); a text cell is its text, even when it
  looks like a date. Row numbers are the sheet's.
* A merged range in the header or data rows is refused (``merges``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastexcel
import polars as pl

from batch.errors import ReadFailure
from batch.manifest.archive import Archive, check_archive
from batch.manifest.clip import quoted
from batch.manifest.columns import REQUIRED_COLUMNS
from batch.manifest.merges import check_merges, hidden_sheets, sheet_parts
from batch.manifest.store import RawManifest, assemble

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
    _check_hidden_rows(raw, _hidden_rows_of(archive, name), include=hidden_rows)
    return raw


#: Hidden rows named in a message; the rest are counted.
ROWS_NAMED = 10
INCLUDE_HIDDEN = "--include-hidden-rows"


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
    detail = " ".join(str(exc).split())[:200]
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
    fallback: tuple[str, pl.DataFrame, int] | None = None
    for name in names:
        frame, first = loader.load(name)
        if has_header(frame):
            return name, frame, first
        fallback = fallback or (name, frame, first)
    if fallback is None:
        raise ReadFailure("the workbook has no sheets")
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
    """A date cell's text (``YYYY-MM-DD HH:MM:SS[.fff]``) as ``frames`` writes date-times:
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
