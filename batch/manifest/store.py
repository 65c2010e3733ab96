"""Records to a compact row store: the file cut into prefix, header, data rows and trailer.

Every format ends up here: prefix rows (up to and including ``[Data]``), the header, the data
rows packed into one buffer with a family index, and the trailer rows after the data section.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from batch.errors import ReadFailure

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
