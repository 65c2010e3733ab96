"""Old Excel (``.xls``) and LibreOffice (``.ods``) workbooks, read as an XLSX is read.

fastexcel (calamine) reads both, and the same loader as for XLSX (``xlsx``) turns a sheet into
text cells:

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
from batch.manifest.archive import check_archive, limit_bytes
from batch.manifest.clip import quoted
from batch.manifest.merges import check_merges, column_letters
from batch.manifest.store import RawManifest

# The XLSX reader's loader and assembly, shared so both read cells the same way.
from batch.manifest.xlsx import _assemble, _Loader, has_header

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
    reader = _open(path, suffix)
    names = list(reader.sheet_names)
    loader = _Loader(reader, typed=True)
    name, frame, first = _choose(reader, loader, names, sheet, suffix)
    try:
        raw = _assemble(frame)
    except ReadFailure as exc:
        exc.sheet = name
        raise
    raw.sheet, raw.sheets, raw.first_column = name, tuple(names), first
    if suffix == ".ods":
        layout = ods_layout(path, name)
        check_merges(raw, layout.merges)
        _check_hidden_rows(raw, layout.hidden)
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


def _open(path: Path, suffix: str) -> Any:
    try:
        return fastexcel.read_excel(str(path))
    except Exception as exc:  # fastexcel raises its own error classes
        detail = " ".join(str(exc).split())[:200]
        raise ReadFailure(f"not a readable {KINDS[suffix]} workbook ({detail})",
                          hint="open it and save it again, or save it as .xlsx") from None


def _choose(reader: Any, loader: _Loader, names: list[str], wanted: str | None,
            suffix: str) -> tuple[str, pl.DataFrame, int]:
    """The sheet to read (a hidden one only when named), its cells and first column."""
    if wanted is not None:
        name = _named(names, wanted)
        return name, *loader.load(name)
    visible = [n for n in names if _visible(reader, n)]
    fallback: tuple[str, pl.DataFrame, int] | None = None
    for name in visible:
        frame, first = loader.load(name)
        if has_header(frame):
            return name, frame, first
        fallback = fallback or (name, frame, first)
    if fallback is None:
        hidden = f" ({len(names)} hidden: name one with --sheet)" if names else ""
        raise ReadFailure(f"the {KINDS[suffix]} workbook has no visible sheet{hidden}")
    return fallback


def _visible(reader: Any, name: str) -> bool:
    try:
        return str(reader.load_sheet(name, header_row=None, n_rows=0).visible) == "visible"
    except Exception:  # fastexcel raises its own error classes; the full load will say
        return True


def _named(names: list[str], wanted: str) -> str:
    if wanted in names:
        return wanted
    folded = [name for name in names if name.casefold() == wanted.casefold()]
    if len(folded) == 1:
        return folded[0]
    listed = ", ".join(quoted(name) for name in names[:20])
    raise ReadFailure(f"the workbook has no sheet named {quoted(wanted)}; its sheets: {listed}",
                      hint="pass --sheet with one of these names")


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


def _check_hidden_rows(raw: RawManifest, hidden: list[tuple[int, int]]) -> None:
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
