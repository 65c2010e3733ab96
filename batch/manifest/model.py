"""The manifest as data: rows, families, the manifest itself, problems found in it, and the
vocabulary (column names, how list cells are split, the proband rule).

Rows live in a compact store (see ``store.RowStore``); only a family index (row positions per
family, in official family order) is kept besides. ``Family`` objects are built on demand while
iterating and dropped by the caller, so memory does not grow with the number of families
beyond the index.

The 23 official columns are the official template's, in its order. Action columns have
multi-word names so that they never collide with custom fields (any other column, which goes to
``test_data.extra_data``).
"""

from __future__ import annotations

import copy
import hashlib
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from batch.manifest.store import Kind, RawManifest, rightmost
from batch.text import bounded_message, clip, quoted

if TYPE_CHECKING:
    import polars as pl

OFFICIAL_COLUMNS: tuple[str, ...] = (
    "Family Id",
    "Case Type",
    "Files Names",
    "Sample Type",
    "BioSample Name",
    "Visualization Files",
    "Storage Provider Id",
    "Default Project",
    "Execute Now",
    "Relation",
    "Sex",
    "Phenotypes",
    "Phenotypes Id",
    "Date Of Birth",
    "Boost Genes",
    "Gene List Id",
    "Kit Id",
    "Intersect Bed Id",
    "Selected Preset",
    "Label Id",
    "Clinical Notes",
    "Due Date",
    "Opt In",
)
#: Columns that ask for steps after the create (``Case Id``: there is nothing to create).
ACTION_COLUMNS = ("Case Id", "Assign To", "Set Status", "Preset Group", "Preset Gene Lists")
#: The action columns that ask for a step.
ACTION_CELLS = ACTION_COLUMNS[1:]
#: Columns that are never custom fields (never copied into ``extra_data``).
KNOWN_COLUMNS = frozenset((*OFFICIAL_COLUMNS, "Gender", "Errors", *ACTION_COLUMNS))
REQUIRED_COLUMNS = ("Family Id", "Case Type", "Files Names")
OFFICIAL_FAMILY_LIMIT = 50
#: The cells of a family's lead row (``Manifest.lead``): its proband, case, actions.
LEAD_COLUMNS = ("Relation", "BioSample Name", *ACTION_COLUMNS)
#: What a family's content hash leaves out: action columns ask for steps, not data.
HASH_IGNORED = frozenset(("Case Id", "Errors", *ACTION_COLUMNS))


def is_proband(relation: str) -> bool:
    """The proband row: Relation ``proband`` or empty (the official default)."""
    return relation in ("proband", "")


#: Digits an id may have: ids are 64-bit integers on the server (inferred) and the JSON
#: encoder sends no wider integer (a longer id would fail at send time, not as a cell).
ID_DIGITS = 18


def split_items(cell: str) -> list[str]:
    """Items of a ``;`` list: trimmed, empty items dropped."""
    if not cell:
        return []
    if ";" not in cell:  # one item: most cells
        item = cell.strip()
        return [item] if item else []
    return [item for item in map(str.strip, cell.split(";")) if item]


def parse_gene_lists(cell: str) -> tuple[tuple[int, str], ...]:
    """``<id>:<name>`` items of ``Preset Gene Lists``; malformed items are left out."""
    parsed: list[tuple[int, str]] = []
    for item in split_items(cell):
        number, sep, name = item.partition(":")
        number = number.strip()
        if sep and number.isascii() and number.isdigit() and len(number) <= ID_DIGITS \
                and name.strip():
            parsed.append((int(number), name.strip()))
    return tuple(parsed)


# JavaScript array-index keys come first in object-key order (BEHAVIOUR §1 "Grouping").
_JS_INDEX = re.compile(r"^(0|[1-9][0-9]{0,9})$")
_JS_INDEX_LIMIT = 4294967295


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One problem found in a manifest, located as precisely as possible."""

    file: str
    message: str
    row: int | None = None
    family: str | None = None
    column: str | None = None
    value: str | None = None
    hint: str | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        """One line; every value in it cut to about 100 characters (a cell may be huge)."""
        parts = [self.file if self.row is None else f"{self.file}:{self.row}"]
        if self.family is not None:
            parts.append(f"family {clip(self.family)}")
        if self.column is not None:
            column = clip(self.column)
            parts.append(column if self.value is None else f"{column} = {quoted(self.value)}")
        message = bounded_message(self.message, self.value)
        parts.append(message if self.severity == "error" else f"warning: {message}")
        text = ": ".join(parts)
        return f"{text} ({bounded_message(self.hint)})" if self.hint else text


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: its spreadsheet row number and its cells by column name."""

    number: int
    cells: Mapping[str, str]

    def get(self, column: str) -> str:
        """The cell, ``""`` when absent."""
        return self.cells.get(column, "")


@dataclass(frozen=True, slots=True)
class Actions:
    """What to do to a case after it exists (the action columns of the proband row)."""

    assign_to: tuple[str, ...] = ()
    set_status: str | None = None
    preset_group: str | None = None
    preset_gene_lists: tuple[tuple[int, str], ...] = ()

    @property
    def steps(self) -> tuple[str, ...]:
        """The action steps to run, in run order."""
        wanted = (
            ("assign", bool(self.assign_to)),
            ("preset_group", self.preset_group is not None),
            ("set_status", self.set_status is not None),
        )
        return tuple(name for name, on in wanted if on)


_NO_ACTIONS = Actions()


@dataclass(frozen=True, slots=True)
class Family:
    """The rows of one case, grouped by ``Family Id``."""

    family_id: str
    rows: tuple[Row, ...]
    columns: tuple[str, ...] = ()
    proband: Row | None = field(init=False, repr=False, compare=False)
    """The first row whose Relation is ``proband`` or empty (found once: read very often)."""

    def __post_init__(self) -> None:
        found = None
        for row in self.rows:
            if is_proband(row.cells.get("Relation", "")):
                found = row
                break
        object.__setattr__(self, "proband", found)

    @property
    def case_id(self) -> str | None:
        """The proband's ``Case Id`` (an existing case: nothing to create)."""
        proband = self.proband
        value = proband.get("Case Id") if proband is not None else ""
        return value or None

    @property
    def proband_sample(self) -> str:
        """The proband's BioSample Name (``""`` if none)."""
        proband = self.proband
        return proband.get("BioSample Name") if proband is not None else ""

    @property
    def actions(self) -> Actions:
        """The action columns of the proband row (first row when there is no proband)."""
        source = self.proband or (self.rows[0] if self.rows else None)
        if source is None or not any(map(source.cells.get, ACTION_CELLS)):
            return _NO_ACTIONS
        return Actions(
            assign_to=tuple(split_items(source.get("Assign To"))),
            set_status=source.get("Set Status") or None,
            preset_group=source.get("Preset Group") or None,
            preset_gene_lists=parse_gene_lists(source.get("Preset Gene Lists")),
        )

    @property
    def row_hash(self) -> str:
        """The family's content hash (see :func:`content_hash`)."""
        return content_hash(cells_text(row.cells) for row in self.rows)

    @property
    def is_update_only(self) -> bool:
        """True when the case exists already (``Case Id`` on the proband row)."""
        return self.case_id is not None


class Manifest:
    """A read manifest: header, compact row store and family index."""

    def __init__(self, path: Path, raw: RawManifest) -> None:
        self.path = path
        self.kind: Kind = raw.kind
        self.sheet: str | None = raw.sheet
        """The workbook sheet read (XLSX only)."""
        self.source = source_name(path, raw.sheet)
        """The file as problems name it: with its sheet for a workbook (``m.xlsx[Cases]``)."""
        self.columns: tuple[str, ...] = tuple(raw.header)
        self.warnings: list[Problem] = [
            Problem(file=self.source, row=row, message=text, severity="warning")
            for text, row in raw.warnings
        ]
        self.prefix = raw.prefix
        self.trailer = raw.trailer
        self._store = raw.store
        self._unique_columns = len(set(self.columns)) == len(self.columns)
        self._index = {name: i for i, name in enumerate(self.columns)}
        self._has_actions = any(c in self.columns for c in ACTION_CELLS)
        hashed = sorted((name, i) for i, name in enumerate(self.columns)
                        if name not in HASH_IGNORED)
        self._hash_prefixes = [f"{name}\x1f" for name, _ in hashed]
        self._hash_order = _picker([i for _, i in hashed])
        self._hash_template = _text_template(self._hash_prefixes)
        self._order = _family_order(raw.store.index)
        self._lead_names = [name for name in LEAD_COLUMNS if name in self._index]
        self._lead_pick = _picker([self._index[name] for name in self._lead_names])

    def __len__(self) -> int:
        return len(self._order)

    def select(self, only: Sequence[str]) -> Manifest:
        """The same file with only the families named in *only* to work on (in file order);
        the rows of the others stay readable (checks across families still see them).
        ``KeyError`` names the ids the file does not have."""
        missing = [fid for fid in dict.fromkeys(only) if fid not in self._store.index]
        if missing:
            raise KeyError(", ".join(quoted(fid) for fid in missing[:10])
                           + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
        wanted = set(only)
        chosen = copy.copy(self)
        chosen._order = [fid for fid in self._order if fid in wanted]
        return chosen

    def __contains__(self, family_id: object) -> bool:
        return family_id in self._store.index

    @property
    def row_count(self) -> int:
        """Number of data rows."""
        return len(self._store)

    @property
    def family_ids(self) -> list[str]:
        """Family ids in official family order."""
        return list(self._order)

    def families(self) -> Iterator[Family]:
        """Families in official order (JS object-key order), built on demand."""
        for family_id in self._order:
            yield self.family(family_id)

    def family(self, family_id: str) -> Family:
        """The family with this id; ``KeyError`` when there is none."""
        line, cells = self._store.line, self._cells
        rows = tuple([Row(line(p), cells(p)) for p in self._store.index[family_id]])
        return Family(family_id=family_id, rows=rows, columns=self.columns)

    def lead(self, family_id: str) -> Family:
        """The family with its proband row only (its first row when it has none), holding
        the cells its case id, proband sample and actions are read from (``LEAD_COLUMNS``):
        what a plan reads, without building every row."""
        positions = self._store.index[family_id]
        relation = self._index.get("Relation")
        cells: dict[str, str]
        if not self._unique_columns or relation is None:
            position = self.proband_position(family_id)
            row = self._row(positions[0] if position is None else position)
            line = row.number
            cells = {name: value for name, value in row.cells.items() if name in LEAD_COLUMNS}
        else:
            values = self._store.values(positions[0])
            position = positions[0]
            if not is_proband(values[relation] or ""):  # the proband is mostly the first row
                found = self.proband_position(family_id)
                if found is not None:
                    position, values = found, self._store.values(found)
            line = self._store.line(position)
            cells = {name: value for name, value
                     in zip(self._lead_names, self._lead_pick(values), strict=True)
                     if value is not None}
        return Family(family_id=family_id, rows=(Row(line, cells),), columns=self.columns)

    def family_hash(self, family_id: str) -> str:
        """``Family.row_hash`` of a family, without building the family."""
        positions = self._store.index[family_id]
        if not self._unique_columns:  # the rightmost present cell wins: build the cells
            return content_hash(cells_text(self._cells(p)) for p in positions)
        # Cells picked by position in column-name order: no dict per row (C loops).
        return content_hash([self._row_text(self._hash_order(self._store.values(p)))
                             for p in positions])

    def _row_text(self, cells: Sequence[str | None]) -> str:
        """:func:`row_text` of picked cells: every cell present and some column hashed, the
        cells slotted between the prefixes of a template (one join, no string per cell)."""
        template = self._hash_template
        if template is None or None in cells:
            return row_text(self._hash_prefixes, cells)
        parts = template.copy()
        parts[1:-1:2] = cells
        return "".join(parts)  # type: ignore[arg-type]

    @property
    def has_action_columns(self) -> bool:
        """Whether any action column other than ``Case Id`` is in the header."""
        return self._has_actions

    def _cells(self, position: int) -> dict[str, str]:
        if self._unique_columns:
            found = self._store.complete(position)
            if found is not None:  # the common case: one dict from C loops
                return dict(zip(self.columns, found, strict=True))
        values = self._store.values(position)
        # Duplicate names: the rightmost present cell wins, as in the official CLI.
        return {name: v for name, v in zip(self.columns, values, strict=True) if v is not None}


    def frames(self) -> Iterator[pl.DataFrame]:
        """The data rows in file order, a polars frame per megabyte of rows, of text columns
        named as the header (whose names must be unique) and the row numbers
        (``store.ROW_NUMBER``); a blank or absent cell reads ``""``, every other as it is."""
        if not self._unique_columns:
            raise ValueError("the header names a column twice")
        names = {f"c{i}": name for i, name in enumerate(self.columns)}
        for found in self._store.frames():
            yield found.rename(names)

    def holds(self, text: str) -> bool:
        """Whether any data cell contains *text*."""
        return self._store.holds(text)

    def cell(self, position: int, column: str) -> str:
        """One cell of the row at a store position (``""`` when absent), without the row."""
        if not self._unique_columns:
            return self._cells(position).get(column, "")
        index = self._index.get(column)
        value = None if index is None else self._store.values(position)[index]
        return value or ""

    def row_cells(self, position: int) -> dict[str, str]:
        """The present cells of the row at a store position, by column name."""
        return self._cells(position)

    def proband_position(self, family_id: str) -> int | None:
        """Store position of ``Family.proband``, without building the family."""
        return next((p for p in self._store.index[family_id]
                     if is_proband(self.cell(p, "Relation"))), None)

    def row_positions(self, family_id: str) -> list[int]:
        """Store positions (0-based, file order) of a family's rows."""
        return self._store.index[family_id]

    def row_number(self, position: int) -> int:
        """Spreadsheet row number of the row at a store position."""
        return self._store.line(position)

    def cell_rows(self, columns: Sequence[str]) -> Iterator[tuple[int, tuple[str, ...]]]:
        """``(row number, cells of *columns*)`` for every data row in file order; a column
        that is absent (from the row or the header) reads as ``""``."""
        indices = [rightmost(self.columns, name) for name in columns]
        present = [i for i in indices if i is not None]
        if len(present) == len(indices):
            yield from self._store.picked(present)
            return
        for number, cells in self._store.picked(present):
            found = iter(cells)
            yield number, tuple("" if i is None else next(found) for i in indices)

    def _row(self, position: int) -> Row:
        return Row(number=self._store.line(position), cells=self._cells(position))


def source_name(path: Path, sheet: str | None) -> str:
    """How problems name a manifest: the file name, with ``[sheet]`` for a workbook."""
    return path.name if sheet is None else f"{path.name}[{clip(sheet)}]"


def _picker(indices: list[int]) -> Callable[[Sequence[str | None]], tuple[str | None, ...]]:
    """A function that picks the cells at *indices*, in that order, as a tuple."""
    if len(indices) == 1:
        only = indices[0]
        return lambda values: (values[only],)
    if not indices:
        return lambda values: ()
    return operator.itemgetter(*indices)


def _text_template(prefixes: Sequence[str]) -> list[str | None] | None:
    """``[p1, _, RS p2, _, ..., RS pn, _, RS]``: :func:`row_text` once cells fill the gaps;
    None without prefixes (an empty row text)."""
    if not prefixes:
        return None
    template: list[str | None] = []
    for number, prefix in enumerate(prefixes):
        template += [prefix if number == 0 else "\x1e" + prefix, None]
    return [*template, "\x1e"]


def row_text(prefixes: Sequence[str], cells: Sequence[str | None]) -> str:
    """One row's part of the content hash: ``name US cell RS`` for each present cell, in
    column-name order (*prefixes* are ``name US``; an absent cell is None and left out).

    Cells cannot hold U+001D-U+001F (the reader refuses them), so they separate unambiguously.
    """
    if None in cells:
        return "".join(p + c + "\x1e" for p, c in zip(prefixes, cells, strict=True)
                       if c is not None)
    return "\x1e".join(map(operator.add, prefixes, cells)) + "\x1e" if cells else ""


def cells_text(cells: Mapping[str, str]) -> str:
    """:func:`row_text` of a row given as cells by column name."""
    names = sorted(name for name in cells if name not in HASH_IGNORED)
    return row_text([f"{name}\x1f" for name in names], [cells[name] for name in names])


def content_hash(texts: Iterable[str]) -> str:
    """A family's content hash: SHA-256 of its rows' texts, in file order. It says whether the
    case's data changed: ``Errors`` and the action columns are left out."""
    return hashlib.sha256("\x1d".join(texts).encode("utf-8")).hexdigest()


def _family_order(index: Mapping[str, list[int]]) -> list[str]:
    """Family ids in JavaScript object-key order: array-index keys first, numerically."""
    numeric = sorted(
        (int(key), key) for key in index if _JS_INDEX.match(key) and int(key) < _JS_INDEX_LIMIT
    )
    first = {key for _, key in numeric}
    return [key for _, key in numeric] + [key for key in index if key not in first]
