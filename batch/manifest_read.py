"""Low-level manifest reading: bytes and workbooks to records, records to a compact row store.

The official CLI trims only unquoted CSV cells and tells a missing trailing cell (absent) from an
empty one, so CSV goes through a small tokenizer of our own instead of a generic reader. Parquet
and XLSX go through polars. Every format ends up in the same place: prefix rows (up to and
including ``[Data]``), the header, a polars store of the data rows (one string column per header
position, ``null`` = absent) and the trailer rows after the data section.
"""

from __future__ import annotations

import codecs
import csv
import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

Kind = Literal["official-csv", "csv", "parquet", "xlsx"]
Cell = str | None

_BATCH_ROWS = 10_000
_SECTION = re.compile(r"^\[.+\]$")
_DATA_LINE = re.compile(r'^\s*"?\[Data\]"?\s*(,|$)')


class ReadFailure(Exception):
    """The file cannot be read; ``row`` is the spreadsheet row when one is to blame."""

    def __init__(self, message: str, *, row: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row
        self.hint = hint


@dataclass(slots=True)
class RawManifest:
    """What a reader hands to ``batch.manifest``: the file cut into its parts."""

    kind: Kind
    header: list[str]
    store: RowStore
    prefix: list[list[str]] = field(default_factory=list)
    trailer: list[list[str]] = field(default_factory=list)
    warnings: list[tuple[str, int | None]] = field(default_factory=list)


def rightmost(columns: Sequence[str], name: str) -> int | None:
    """Position of the last column called *name* (the one that wins), None when absent."""
    for position in range(len(columns) - 1, -1, -1):
        if columns[position] == name:
            return position
    return None


def key_position(header: Sequence[str]) -> int | None:
    """The column that groups rows: ``Family Id``, else ``Case Id`` (update manifests)."""
    found = rightmost(header, "Family Id")
    return found if found is not None else rightmost(header, "Case Id")


# --------------------------------------------------------------------------- CSV tokenizer


def _stray_quote(text: str, line: int) -> ReadFailure:
    return ReadFailure(
        f"a quote inside a cell that does not start with a quote (near {text.strip()[:40]!r})",
        row=line,
        hint='quote the whole cell and double inner quotes: "a ""b"" c"',
    )


# A record whose quoted cells span whole cells: `"..."` (with "" escapes) or bare text.
_WELL_QUOTED = re.compile(r'(?:"[^"]*(?:""[^"]*)*"|[^",]*)(?:,(?:"[^"]*(?:""[^"]*)*"|[^",]*))*')
_CSV_FIELD_LIMIT = 100_000
# Blanks just inside the quotes of a cell: only the exact splitter keeps them.
_EDGE_BLANK = re.compile(r'(?:^|,)"\s|\s"(?:,|$)')


def _split_record(record: str, line: int) -> list[str]:
    """Split a record that contains quotes (the C csv parser when it gives the same answer)."""
    # The csv module refuses cells over its field size limit (128 KiB): keep those for ours.
    small = len(record) < _CSV_FIELD_LIMIT
    if small and _WELL_QUOTED.fullmatch(record) and not _EDGE_BLANK.search(record):
        # No quoted cell has blanks at its edges, so trimming every cell trims only bare ones.
        return [cell.strip() for cell in next(csv.reader((record,)))]
    return _split_quoted(record, line)


def _split_quoted(record: str, line: int) -> list[str]:
    """Split one record that contains quotes, keeping quoted text verbatim.

    Splitting on the quote character alternates outside and inside text; an empty outside
    piece between two inside pieces is an escaped quote (``""``). Far faster than a scan
    character by character, which matters for files that quote every cell.
    """
    parts = record.split('"')
    last = len(parts) - 1
    cells: list[str] = []
    quoted: list[str] = []
    for index, part in enumerate(parts):
        if index % 2:
            quoted.append(part)
            continue
        if index and not part and index < last:
            quoted.append('"')  # "" inside a quoted cell
            continue
        pieces = part.split(",")
        if index:  # a quoted cell just closed: only blanks may follow before the comma
            if pieces[0].strip():
                raise _stray_quote(quoted[-1] + '"' + part if quoted else part, line)
            cells.append("".join(quoted))
            quoted.clear()
            if len(pieces) == 1:
                if index < last:
                    raise _stray_quote(f'"{cells[-1]}"{part}"', line)
                return cells
            pieces = pieces[1:]
        cells.extend(piece.strip() for piece in pieces[:-1])
        if index < last:  # a quote opens the next cell: only blanks may precede it
            if pieces[-1].strip():
                raise _stray_quote(pieces[-1], line)
        else:
            cells.append(pieces[-1].strip())
    return cells


def _strip_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\n", "\r")):
        return text[:-1]
    return text


def csv_records(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(first line number, cells)`` for each CSV record; unquoted cells are trimmed.

    *lines* must keep their line endings (``open(..., newline="")``) so that quoted cells spanning
    lines are rebuilt exactly. Lines without quotes take a fast path.
    """
    pending: list[str] = []
    start = 0
    quotes = 0
    for number, line in enumerate(lines, start=1):
        if not pending:
            if '"' not in line:
                yield number, [cell.strip() for cell in _strip_newline(line).split(",")]
                continue
            start = number
        pending.append(line)
        quotes += line.count('"')
        if quotes % 2:
            continue  # inside a quoted cell: the record goes on over the next line
        record = _strip_newline("".join(pending))
        pending.clear()
        quotes = 0
        yield start, _split_record(record, start)
    if pending:
        raise _unclosed("".join(pending), start)


def _unclosed(record: str, line: int) -> ReadFailure:
    """Explain an odd number of quotes: a stray quote in a bare cell, or a missing one."""
    first = record.index('"')
    cell_start = record.rfind(",", 0, first) + 1
    if record[cell_start:first].strip():
        return ReadFailure(
            "a quote inside a cell that does not start with a quote"
            f" (near {record[cell_start : first + 10]!r})",
            row=line,
            hint='quote the whole cell and double inner quotes: "a ""b"" c"',
        )
    return ReadFailure(
        "a quoted cell is never closed (a quote is missing)",
        row=line,
        hint="every cell that starts with a quote must end with one",
    )


def _describe_bad_bytes(path: Path) -> ReadFailure:
    """Find the first byte that is not UTF-8 and say where it is."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError as exc:
                bad = offset + exc.start
                return ReadFailure(
                    f"the file is not UTF-8 text: byte 0x{line[exc.start]:02x} at offset {bad}"
                    f" (line {line_number}) cannot be decoded",
                    row=line_number,
                    hint="save it as UTF-8 (Excel: 'CSV UTF-8 (Comma delimited)')",
                )
            offset += len(line)
    return ReadFailure("the file is not UTF-8 text", hint="save it as UTF-8")


def _sniff(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(4)


def _check_encoding_head(head: bytes) -> None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ReadFailure(
            "the file is UTF-16 text, not UTF-8",
            row=1,
            hint="save it as UTF-8 (Excel: 'CSV UTF-8 (Comma delimited)')",
        )
    if head.startswith(b"PK\x03\x04"):
        raise ReadFailure(
            "the file is a zip archive (an Excel workbook?), not CSV text",
            hint="give it a .xlsx name, or save it as CSV UTF-8",
        )


def _has_data_row(path: Path) -> bool:
    """Cheap pre-scan: does any line start with a ``[Data]`` cell?"""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return any(_DATA_LINE.match(line) for line in handle)


def read_csv(path: Path) -> RawManifest:
    """Read an official batch CSV (with ``[Data]``) or a plain CSV (first row is the header)."""
    head = _sniff(path)
    if not head:
        raise ReadFailure("the file is empty (0 bytes)", hint="export the manifest again")
    _check_encoding_head(head)
    try:
        official = _has_data_row(path)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            raw = assemble(
                csv_records(handle),
                kind="official-csv" if official else "csv",
                trim=False,
                data_row=official,
            )
    except UnicodeDecodeError:
        raise _describe_bad_bytes(path) from None
    if head.startswith(codecs.BOM_UTF8):
        raw.warnings.append(("the file starts with a UTF-8 byte-order mark (ignored)", 1))
    return raw


# --------------------------------------------------------------------------- Parquet and XLSX


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text; integral floats lose their ``.0`` (1.0 written by a LIMS means 1)."""
    columns: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if dtype.is_float():
            whole = column.is_finite() & (column % 1 == 0)
            text = (
                pl.when(whole)
                .then(column.cast(pl.Int64).cast(pl.String))
                .otherwise(column.cast(pl.String))
            )
            columns.append(text.alias(name))
        else:
            columns.append(column.cast(pl.String, strict=False))
    return frame.select(columns)


def read_parquet(path: Path) -> RawManifest:
    """Read a Parquet manifest: column names are the header; a null cell is absent."""
    try:
        names = list(pl.read_parquet_schema(path))
        records = _parquet_rows(path)
        # An official CSV converted as is has "[Data]" as its first column name.
        official = bool(names) and names[0].strip() == "[Data]"
        return assemble(_with_first(names, records), kind="parquet", trim=True, data_row=official)
    except (pl.exceptions.PolarsError, OSError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ReadFailure(f"not a readable Parquet file ({detail})") from None


def _parquet_rows(path: Path) -> Iterator[tuple[int, Sequence[Cell]]]:
    """Rows in batches, so that the whole table is never held as Python objects."""
    number = 2
    for batch in pl.scan_parquet(path).collect_batches(chunk_size=_BATCH_ROWS):
        for row in _as_text(batch).iter_rows():
            yield number, row
            number += 1


def _with_first(
    names: list[str], rows: Iterator[tuple[int, Sequence[Cell]]]
) -> Iterator[tuple[int, Sequence[Cell]]]:
    yield 1, names
    yield from rows


def read_xlsx(path: Path) -> RawManifest:
    """Read the first sheet of a workbook; a blank cell is an empty cell (Excel has no other)."""
    try:
        frame = pl.read_excel(
            path,
            engine="calamine",
            has_header=False,
            infer_schema_length=0,
            drop_empty_rows=False,
            drop_empty_cols=False,
            raise_if_empty=False,
            # Keep leading empty rows, or row numbers would not be the sheet's.
            read_options={"skip_rows": 0},
        )
    except Exception as exc:  # fastexcel raises its own error classes
        detail = " ".join(str(exc).split())[:200]
        raise ReadFailure(f"not a readable XLSX workbook ({detail})") from None
    frame = frame.with_columns(pl.all().cast(pl.String).fill_null(""))
    if frame.width == 0:
        raise ReadFailure("the workbook's first sheet is empty")
    official = bool((frame.get_column(frame.columns[0]).str.strip_chars() == "[Data]").any())
    rows = ((number, row) for number, row in enumerate(frame.iter_rows(), start=1))
    return assemble(rows, kind="xlsx", trim=True, data_row=official)


# --------------------------------------------------------------------------- sections and store


_SEPARATOR = "\x1f"
_ABSENT = "\x1e"


class RowStore:
    """Data rows packed into one UTF-8 buffer, plus the family index.

    A row is its cells joined by U+001F, an absent cell written as U+001E; the buffer holds no
    per-row Python objects, so a 100,000-family manifest costs about its file size. The index
    maps each family key (the *key_position* cell) to its row positions, in first appearance.
    """

    def __init__(self, width: int, key_position: int | None) -> None:
        self.width = width
        self.key_position = key_position
        self._data = bytearray()
        self._starts = array("Q", [0])
        self._lines = array("Q")
        self.index: dict[str, list[int]] = {}
        self.extra_rows: list[int] = []

    def __len__(self) -> int:
        return len(self._lines)

    def add(self, line: int, cells: Sequence[Cell]) -> None:
        """Append one data row (cells beyond the header width are dropped)."""
        if len(cells) > self.width and any(cell for cell in cells[self.width :]):
            self.extra_rows.append(line)
        padded = [(cells[i] if i < len(cells) else None) for i in range(self.width)]
        absent = sum(cell is None for cell in padded)
        text = _SEPARATOR.join(_ABSENT if cell is None else cell for cell in padded)
        if text.count(_SEPARATOR) != self.width - 1 or text.count(_ABSENT) != absent:
            raise ReadFailure(
                "a cell holds a control character (U+001E or U+001F)",
                row=line,
                hint="remove control characters from the cells",
            )
        position = len(self._lines)
        self._data += text.encode("utf-8")
        self._starts.append(len(self._data))
        self._lines.append(line)
        if self.key_position is not None:
            key = padded[self.key_position] or ""
            self.index.setdefault(key, []).append(position)

    def holds(self, text: str) -> bool:
        """Whether any cell contains *text*."""
        return text.encode("utf-8") in self._data

    def line(self, position: int) -> int:
        """Spreadsheet row number of the row at *position*."""
        return self._lines[position]

    def values(self, position: int) -> tuple[Cell, ...]:
        """The row's cells by header position (None = absent)."""
        raw = self._data[self._starts[position] : self._starts[position + 1]].decode("utf-8")
        if _ABSENT not in raw:  # the common case: every cell present
            return tuple(raw.split(_SEPARATOR))
        return tuple(None if cell == _ABSENT else cell for cell in raw.split(_SEPARATOR))

    def column(self, position: int) -> Iterator[tuple[int, Cell]]:
        """``(row position, cell)`` of one column for every row, in file order."""
        for row in range(len(self)):
            yield row, self.values(row)[position]


def _is_blank(cells: Sequence[Cell]) -> bool:
    return all(not cell for cell in cells)


def _plain(cells: Sequence[Cell]) -> list[str]:
    return [cell or "" for cell in cells]


def assemble(
    records: Iterable[tuple[int, Sequence[Cell]]], *, kind: Kind, trim: bool, data_row: bool
) -> RawManifest:
    """Cut records into prefix, header, data rows and trailer (BEHAVIOUR §1 "Sections").

    With *data_row*, the header is the row after the first ``[Data]`` row and every row up to
    ``[Data]`` is kept as the prefix; otherwise the first row is the header.
    """
    iterator = ((line, _trimmed(cells) if trim else cells) for line, cells in records)
    prefix: list[list[str]] = []
    if data_row:
        for _line, cells in iterator:
            prefix.append(_plain(cells))
            if _first(cells) == "[Data]":
                break
        else:
            raise ReadFailure('the file has no "[Data]" row')
        header_cells = _next(iterator)
    else:
        # Leading blank rows (a sheet that starts lower down) are skipped.
        first = next((record for record in iterator if not _is_blank(record[1])), None)
        if first is None:
            raise ReadFailure("there is no header row in the file")
        header_cells = first[1]
        if _SECTION.match(_first(header_cells)):
            raise ReadFailure(
                f'the file has a {_first(header_cells)} section but no "[Data]" row',
                row=first[0],
                hint="the manifest's header and rows go under a [Data] row",
            )
    header = [(cell or "").strip() for cell in header_cells]
    store = RowStore(len(header), key_position(header))
    trailer: list[list[str]] = []
    for line, cells in iterator:
        if trailer or _is_blank(cells) or _SECTION.match(_first(cells)):
            trailer.append(_plain(cells))
            continue
        store.add(line, cells)
    raw = RawManifest(kind=kind, header=header, store=store, prefix=prefix)
    raw.trailer = trailer
    _note_trailer(raw, trailer)
    _note_extra_cells(raw, store.extra_rows)
    return raw


def _next(iterator: Iterator[tuple[int, Sequence[Cell]]]) -> Sequence[Cell]:
    for _line, cells in iterator:
        return cells
    raise ReadFailure(
        'the "[Data]" row is the last row: there is no header under it',
        hint="the row after [Data] names the columns",
    )


def _first(cells: Sequence[Cell]) -> str:
    return (cells[0] or "") if cells else ""


def _trimmed(cells: Sequence[Cell]) -> list[Cell]:
    return [cell.strip() if cell is not None else None for cell in cells]


def _note_trailer(raw: RawManifest, trailer: list[list[str]]) -> None:
    ignored = sum(1 for cells in trailer[1:] if not _is_blank(cells))
    if ignored:
        raw.warnings.append(
            (
                f"{ignored} non-empty row(s) after the end of the data section are ignored"
                " (a blank row or a [Section] row ends the data)",
                None,
            )
        )


def _note_extra_cells(raw: RawManifest, rows: list[int]) -> None:
    for line in rows[:20]:
        raw.warnings.append(("the row has more cells than the header; extra cells ignored", line))
    if len(rows) > 20:
        raw.warnings.append((f"... and {len(rows) - 20} more rows with extra cells", None))
