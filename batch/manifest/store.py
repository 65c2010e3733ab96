"""Records to a compact row store: the file cut into prefix, header, data rows and trailer.

Every format ends up here: prefix rows (up to and including ``[Data]``), the header, the data
rows packed into one buffer with a family index, and the trailer rows after the data section.
"""

from __future__ import annotations

import bisect
import io
import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from batch.errors import ReadFailure

if TYPE_CHECKING:
    import polars as pl

Kind = Literal["official-csv", "csv", "parquet", "xlsx"]
Cell = str | None

_SECTION = re.compile(r"^\[.+\]$")


@dataclass(slots=True)
class RawManifest:
    """What a reader hands to ``batch.manifest``: the file cut into its parts."""

    kind: Kind
    header: list[str]
    store: RowStore
    prefix: list[list[str]] = field(default_factory=list)
    trailer: list[list[str]] = field(default_factory=list)
    warnings: list[tuple[str, int | None]] = field(default_factory=list)
    header_row: int = 1
    """The header's row number."""
    sheet: str | None = None
    """The workbook sheet read (XLSX only)."""
    sheets: tuple[str, ...] = ()
    """Every sheet of the workbook, in workbook order (XLSX only)."""
    hidden_sheets: frozenset[str] = frozenset()
    """The sheets the workbook hides (XLSX only): read only when ``--sheet`` names one."""
    first_column: int | None = 0
    """The spreadsheet column (0 = A) of the first header cell; None where columns have no
    letters (Parquet)."""


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


_SEPARATOR = "\x1f"
_ABSENT = "\x1e"
_END = "\x1d"
#: Bytes a cell may not hold: C0 controls but tab, LF, CR (and the store's own separators,
#: checked per row), and DEL. UTF-8 never uses these bytes inside a multi-byte character.
_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0D, 0x1D, 0x1E, 0x1F} | {0x7F}
_CONTROL_TABLE = bytes(0 if byte in _CONTROL else byte or 1 for byte in range(256))
_SCAN_CHUNK = 1 << 20
#: Bytes of packed rows per polars frame (``RowStore.frames``).
FRAME_BYTES = 1 << 20
#: The frames' column of spreadsheet row numbers, named as no header cell can be.
ROW_NUMBER = "\x1frow"


class RowStore:
    """Data rows packed into one UTF-8 buffer, plus the family index.

    A row is its cells joined by U+001F and ended by U+001D, an absent cell written as U+001E;
    the buffer holds no per-row Python objects, so a 100,000-family manifest costs about its
    file size. The index maps each family key (the *key_position* cell) to its row positions,
    in first appearance.
    """

    def __init__(self, header: Sequence[str], key_position: int | None) -> None:
        self.header = tuple(header)
        self.width = len(header)
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
        if len(cells) == self.width and None not in cells:  # the common case, in C loops
            padded: Sequence[Cell] = cells
            text = _SEPARATOR.join(cells)  # type: ignore[arg-type]
            absent = 0
        else:
            padded, text, absent = self._padded(line, cells)
        if text.count(_SEPARATOR) != self.width - 1 or text.count(_ABSENT) != absent \
                or _END in text:
            index = next(i for i, cell in enumerate(padded)
                         if cell is not None and control_character(cell) is not None)
            raise _control_failure(line, self.header[index], padded[index] or "")
        position = len(self._lines)
        self._data += (text + _END).encode("utf-8")
        self._starts.append(len(self._data))
        self._lines.append(line)
        if self.key_position is not None:
            key = padded[self.key_position] or ""
            rows = self.index.get(key)
            if rows is None:
                self.index[key] = [position]
            else:
                rows.append(position)

    def _padded(self, line: int, cells: Sequence[Cell]) -> tuple[list[Cell], str, int]:
        """A short or long row cut to the header's width: cells, packed text, absent cells."""
        if len(cells) > self.width and any(cell for cell in cells[self.width :]):
            self.extra_rows.append(line)
        padded = [(cells[i] if i < len(cells) else None) for i in range(self.width)]
        absent = sum(cell is None for cell in padded)
        text = _SEPARATOR.join(_ABSENT if cell is None else cell for cell in padded)
        return padded, text, absent

    def find_control(self) -> tuple[int, int] | None:
        """``(row position, cell index)`` of the first cell holding a control character other
        than tab, LF and CR (U+001D-U+001F are caught by ``add``); None when none does.

        One pass over the packed buffer after reading: no per-row cost on the common path.
        """
        view = memoryview(self._data)
        for start in range(0, len(self._data), _SCAN_CHUNK):
            found = bytes(view[start : start + _SCAN_CHUNK]).translate(_CONTROL_TABLE).find(0)
            if found >= 0:
                position = bisect.bisect_right(self._starts, start + found) - 1
                raw = self._data[self._starts[position] : self._starts[position + 1]]
                return position, raw[: start + found - self._starts[position]].count(b"\x1f")
        return None

    def holds(self, text: str) -> bool:
        """Whether any cell contains *text*."""
        return text.encode("utf-8") in self._data

    def line(self, position: int) -> int:
        """Spreadsheet row number of the row at *position*."""
        return self._lines[position]

    def _raw(self, position: int) -> str:
        return self._data[self._starts[position] : self._starts[position + 1] - 1].decode("utf-8")

    def values(self, position: int) -> Sequence[Cell]:
        """The row's cells by header position (None = absent)."""
        raw = self._raw(position)
        if _ABSENT not in raw:  # the common case: every cell present
            return raw.split(_SEPARATOR)
        return [None if cell == _ABSENT else cell for cell in raw.split(_SEPARATOR)]

    def complete(self, position: int) -> list[str] | None:
        """The row's cells when every one is present (the common case), else None."""
        raw = self._raw(position)
        return None if _ABSENT in raw else raw.split(_SEPARATOR)

    def picked(self, indices: Sequence[int]) -> Iterator[tuple[int, tuple[str, ...]]]:
        """``(row number, the cells at *indices*)`` of every row in file order, an absent
        cell as ``""``; a row is cut only as far as the last index asked for."""
        if not indices:
            yield from ((line, ()) for line in self._lines)
            return
        cut = max(indices)
        data, starts = self._data, self._starts
        for position, line in enumerate(self._lines):
            raw = data[starts[position] : starts[position + 1] - 1].decode("utf-8")
            cells = raw.split(_SEPARATOR, cut + 1)
            if _ABSENT in raw:
                cells = ["" if cell == _ABSENT else cell for cell in cells]
            yield line, tuple([cells[i] for i in indices])

    def frames(self) -> Iterator[pl.DataFrame]:
        """The rows in file order as polars frames of about ``FRAME_BYTES`` each, text columns
        ``c0``, ``c1``... by header position, and each row's spreadsheet row number in
        ``ROW_NUMBER``; a blank or absent cell reads ``""``, every other cell as it is.

        The packed buffer is already a delimited text (U+001F between cells, U+001D after each
        row, neither of which a cell may hold), so polars reads it without a per-row step; a
        piece at a time, since a frame costs several times its text. Its reader takes liberties
        that the pieces undo: it drops a byte-order mark at the start of what it reads (each
        piece starts with a guard row, dropped after), and a CR that it takes for part of a
        line ending (a CR is handed over as U+001C, which no cell holds, and turned back).
        """
        import polars as pl

        names = [f"c{i}" for i in range(self.width)]
        guard = ("-" + _SEPARATOR * (self.width - 1) + _END).encode()
        first = 0
        while first < len(self._lines):
            end = self._starts[first] + FRAME_BYTES
            last = max(first + 1, bisect.bisect_left(self._starts, end))
            last = min(last, len(self._lines))
            data = guard + self._data[self._starts[first] : self._starts[last]]
            lines = pl.Series(ROW_NUMBER, self._lines[first:last].tolist(), dtype=pl.UInt64)
            first = last
            carriage = b"\r" in data
            if carriage:
                data = data.replace(b"\r", b"\x1c")
            absent = _ABSENT.encode() in data
            found = pl.read_csv(io.BytesIO(data), separator=_SEPARATOR, eol_char=_END,
                                quote_char=None, has_header=False, infer_schema=False,
                                new_columns=names).slice(1)
            yield found.with_columns([_exact(pl.col(name), absent, carriage).alias(name)
                                      for name in names] + [lines])

    def column(self, position: int) -> Iterator[tuple[int, Cell]]:
        """``(row position, cell)`` of one column for every row, in file order."""
        for row in range(len(self)):
            yield row, self.values(row)[position]


def _exact(cell: pl.Expr, absent: bool, carriage: bool) -> pl.Expr:
    """A frame's column as the store holds it: absent or blank as ``""``, a CR as a CR."""
    import polars as pl

    if absent:
        cell = pl.when(cell == _ABSENT).then(pl.lit("")).otherwise(cell)
    if carriage:
        cell = cell.str.replace_all("\x1c", "\r", literal=True)
    return cell.fill_null("")


def _is_blank(cells: Sequence[Cell]) -> bool:
    return not any(cells)


def _plain(cells: Sequence[Cell]) -> list[str]:
    return [cell or "" for cell in cells]


def assemble(
    records: Iterable[tuple[int, Sequence[Cell]]], *, kind: Kind, trim: bool, data_row: bool
) -> RawManifest:
    """Cut records into prefix, header, data rows and trailer (BEHAVIOUR §1 "Sections").

    With *data_row*, the header is the row after the first ``[Data]`` row and every row up to
    ``[Data]`` is kept as the prefix; otherwise the first row is the header.
    """
    iterator = (((line, _trimmed(cells)) for line, cells in records) if trim
                else iter(records))
    prefix: list[list[str]] = []
    if data_row:
        for _line, cells in iterator:
            prefix.append(_plain(cells))
            if _first(cells) == "[Data]":
                break
        else:
            raise ReadFailure('the file has no "[Data]" row')
        header_line, header_cells = _next(iterator)
    else:
        # Leading blank rows (a sheet that starts lower down) are skipped.
        first = next((record for record in iterator if not _is_blank(record[1])), None)
        if first is None:
            raise ReadFailure("there is no header row in the file")
        header_line, header_cells = first
        if _SECTION.match(_first(header_cells)):
            raise ReadFailure(
                f'the file has a {_first(header_cells)} section but no "[Data]" row',
                row=first[0],
                hint="the manifest's header and rows go under a [Data] row",
            )
    header = [(cell or "").strip() for cell in header_cells]
    _check_header_cells(header, header_line)
    store = RowStore(header, key_position(header))
    trailer: list[list[str]] = []
    add = store.add
    for line, cells in iterator:
        head = cells[0] if cells else None
        if head and head[0] != "[" and not trailer:  # most rows: told without a call
            add(line, cells)
        elif trailer or _is_blank(cells) or _is_section(cells):
            trailer.append(_plain(cells))
        else:
            add(line, cells)
    _check_controls(store, header)
    raw = RawManifest(kind=kind, header=header, store=store, prefix=prefix,
                      header_row=header_line)
    raw.trailer = trailer
    _note_trailer(raw, trailer)
    _note_extra_cells(raw, store.extra_rows)
    return raw


def _next(iterator: Iterator[tuple[int, Sequence[Cell]]]) -> tuple[int, Sequence[Cell]]:
    for line, cells in iterator:
        return line, cells
    raise ReadFailure(
        'the "[Data]" row is the last row: there is no header under it',
        hint="the row after [Data] names the columns",
    )


def control_character(text: str) -> str | None:
    """The first character of *text* that no cell may hold, None when there is none."""
    return next((c for c in text if ord(c) in _CONTROL or c in (_SEPARATOR, _ABSENT, _END)),
                None)


def _control_failure(line: int, column: str, value: str) -> ReadFailure:
    char = control_character(value) or _SEPARATOR
    return ReadFailure(
        f"the cell holds the control character U+{ord(char):04X}",
        row=line, column=column, value=value,
        hint="remove it: cells may hold tabs and line breaks, no other control characters",
    )


def _check_header_cells(header: Sequence[str], line: int) -> None:
    for position, name in enumerate(header):
        if control_character(name) is not None:
            raise _control_failure(line, f"header cell {position + 1}", name)


def _check_controls(store: RowStore, header: Sequence[str]) -> None:
    found = store.find_control()
    if found is not None:
        position, index = found
        value = store.values(position)[index] or ""
        raise _control_failure(store.line(position), header[index], value)


def _is_section(cells: Sequence[Cell]) -> bool:
    """A ``[Section]`` row (the first cell tested only when it starts with ``[``)."""
    first = _first(cells)
    return first.startswith("[") and _SECTION.match(first) is not None


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
