"""Real XLSX files for tests, written by xlsxwriter: typed cells, several sheets, merged ranges,
and zip bombs built at test time (never committed)."""

from __future__ import annotations

import datetime as dt
import struct
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter

Cell = str | int | float | bool | dt.date | dt.datetime | None


def write_workbook(
    path: Path,
    sheets: Mapping[str, Sequence[Sequence[Cell]]],
    *,
    merges: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    hidden: Sequence[str] = (),
    hidden_rows: Mapping[str, Sequence[int]] | None = None,
    filtered: Mapping[str, str] | None = None,
) -> Path:
    """A workbook with one sheet per entry of *sheets* (rows of typed cells, from A1);
    *merges*: per sheet, ``(range, value)`` merged ranges such as ``("A2:A4", "F1")``;
    *hidden*: sheets hidden (the first other one is the one Excel opens on); *hidden_rows*:
    per sheet, row numbers (1-based) hidden; *filtered*: per sheet, an autofilter range, its
    *hidden_rows* then being the rows the filter leaves out."""
    book = xlsxwriter.Workbook(str(path))
    formats = {
        "date": book.add_format({"num_format": "yyyy-mm-dd"}),
        "datetime": book.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
    }
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                _write(sheet, r, c, cell, formats)
        for ref, value in (merges or {}).get(name, ()):
            sheet.merge_range(ref, value)
        if name in (filtered or {}):
            sheet.autofilter((filtered or {})[name])
            sheet.filter_column(0, "x != blanks")
        for number in (hidden_rows or {}).get(name, ()):
            sheet.set_row(number - 1, None, None, {"hidden": True})
        if name in hidden:
            sheet.hide()
        elif not any(w.name not in hidden for w in book.worksheets()[:-1]):
            sheet.activate()
            sheet.set_first_sheet()
    book.close()
    return path


def _write(sheet: Any, row: int, column: int, cell: Cell, formats: dict[str, Any]) -> None:
    if cell is None:
        return
    if isinstance(cell, dt.datetime):
        has_time = cell.time() != dt.time(0)
        sheet.write_datetime(row, column, cell, formats["datetime" if has_time else "date"])
    elif isinstance(cell, dt.date):
        sheet.write_datetime(row, column, cell, formats["date"])
    elif isinstance(cell, bool):
        sheet.write_boolean(row, column, cell)
    elif isinstance(cell, int | float):
        sheet.write_number(row, column, cell)
    else:
        sheet.write_string(row, column, cell)


def padded_copy(source: Path, target: Path, *, sheet_part: str, pad: int) -> Path:
    """*source* with *pad* bytes of blanks inside one sheet's XML: a real zip bomb (blanks
    compress about 1000:1), written in 1 MB pieces."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename != sheet_part:
                new.writestr(info.filename, data)
                continue
            head, tail = data.split(b"<sheetData>", 1)
            with new.open(info.filename, "w", force_zip64=True) as handle:
                handle.write(head + b"<sheetData>")
                piece = b" " * (1 << 20)
                for _ in range(pad // len(piece)):
                    handle.write(piece)
                handle.write(b" " * (pad % len(piece)) + tail)
    return target


def declare_size(path: Path, part: str, size: int) -> Path:
    """Rewrite the uncompressed size that the archive declares for *part* (local header and
    central directory), leaving the data as it is: an archive that lies about its size."""
    data = bytearray(path.read_bytes())
    name = part.encode()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(part)
    local = info.header_offset
    struct.pack_into("<L", data, local + 22, size)
    central = 0
    while True:
        central = data.index(b"PK\x01\x02", central)
        length = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + length] == name:
            struct.pack_into("<L", data, central + 24, size)
            break
        central += 4
    path.write_bytes(bytes(data))
    return path
