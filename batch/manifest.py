"""Manifests: read any supported file, group its rows into families, write the results CSV.

Rows live in a compact polars store (one string column per header position, ``null`` = absent
cell); only a family index (row positions per family, in official family order) is kept besides.
``Family`` objects are built on demand while iterating and dropped by the caller, so memory does
not grow with the number of families beyond the index.
"""

from __future__ import annotations

import csv
import hashlib
import operator
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from batch.errors import ManifestError
from batch.manifest_read import (
    Kind,
    RawManifest,
    ReadFailure,
    read_csv,
    read_parquet,
    read_xlsx,
    rightmost,
)

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
ACTION_COLUMNS = ("Case Id", "Assign To", "Set Status", "Preset Group", "Preset Gene Lists")
#: Columns that are never custom fields (never copied into ``extra_data``).
KNOWN_COLUMNS = frozenset((*OFFICIAL_COLUMNS, "Gender", "Errors", *ACTION_COLUMNS))
REQUIRED_COLUMNS = ("Family Id", "Case Type", "Files Names")
OFFICIAL_FAMILY_LIMIT = 50
# The hash says whether the case's data changed: action columns ask for steps, not data.
_HASH_IGNORED = frozenset(("Case Id", "Errors", *ACTION_COLUMNS))
_BATCH_FAMILIES = 4096
# JavaScript array-index keys come first in object-key order (BEHAVIOUR §1 "Grouping").
_JS_INDEX = re.compile(r"^(0|[1-9][0-9]{0,9})$")
_JS_INDEX_LIMIT = 4294967295


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a manifest, located as precisely as possible."""

    file: str
    row: int | None
    family: str | None
    column: str | None
    value: str | None
    message: str
    hint: str | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        parts = [self.file if self.row is None else f"{self.file}:{self.row}"]
        if self.family is not None:
            parts.append(f"family {self.family}")
        if self.column is not None:
            parts.append(self.column if self.value is None else f"{self.column} = {self.value!r}")
        parts.append(self.message if self.severity == "error" else f"warning: {self.message}")
        text = ": ".join(parts)
        return f"{text} ({self.hint})" if self.hint else text


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
_ACTION_CELLS = ("Assign To", "Set Status", "Preset Group", "Preset Gene Lists")


def _is_proband(relation: str) -> bool:
    """The proband row: Relation ``proband`` or empty (the official default)."""
    return relation in ("proband", "")


def split_items(cell: str) -> list[str]:
    """Items of a ``;`` list: trimmed, empty items dropped."""
    if not cell:
        return []
    return [item for item in map(str.strip, cell.split(";")) if item]


def parse_gene_lists(cell: str) -> tuple[tuple[int, str], ...]:
    """``<id>:<name>`` items of ``Preset Gene Lists``; malformed items are left out."""
    parsed: list[tuple[int, str]] = []
    for item in split_items(cell):
        number, sep, name = item.partition(":")
        if sep and number.strip().isdigit() and name.strip():
            parsed.append((int(number.strip()), name.strip()))
    return tuple(parsed)


@dataclass(frozen=True, slots=True)
class Family:
    """The rows of one case, grouped by ``Family Id``."""

    family_id: str
    rows: tuple[Row, ...]
    columns: tuple[str, ...] = ()
    proband: Row | None = field(init=False, repr=False, compare=False)
    """The first row whose Relation is ``proband`` or empty (found once: read very often)."""

    def __post_init__(self) -> None:
        found = next((r for r in self.rows if _is_proband(r.cells.get("Relation", ""))), None)
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
        if source is None or not any(map(source.cells.get, _ACTION_CELLS)):
            return _NO_ACTIONS
        return Actions(
            assign_to=tuple(split_items(source.get("Assign To"))),
            set_status=source.get("Set Status") or None,
            preset_group=source.get("Preset Group") or None,
            preset_gene_lists=parse_gene_lists(source.get("Preset Gene Lists")),
        )

    @property
    def row_hash(self) -> str:
        """SHA-256 of the rows' cells in file order, ignoring ``Errors`` and the action columns."""
        return rows_hash(row.cells for row in self.rows)

    @property
    def is_update_only(self) -> bool:
        """True when the case exists already (``Case Id`` on the proband row)."""
        return self.case_id is not None


class Manifest:
    """A read manifest: header, compact row store and family index."""

    def __init__(self, path: Path, raw: RawManifest) -> None:
        self.path = path
        self.kind: Kind = raw.kind
        self.columns: tuple[str, ...] = tuple(raw.header)
        self.warnings: list[Problem] = [
            Problem(path.name, row, None, None, None, text, severity="warning")
            for text, row in raw.warnings
        ]
        self.prefix = raw.prefix
        self.trailer = raw.trailer
        self._store = raw.store
        self._unique_columns = len(set(self.columns)) == len(self.columns)
        self._index = {name: i for i, name in enumerate(self.columns)}
        self._has_actions = any(c in self.columns for c in ACTION_COLUMNS if c != "Case Id")
        hashed = sorted((name, i) for i, name in enumerate(self.columns)
                        if name not in _HASH_IGNORED)
        self._hash_prefixes = [f"{name}\x1f" for name, _ in hashed]
        self._hash_order = _picker([i for _, i in hashed])
        self._order = _family_order(raw.store.index)

    def __len__(self) -> int:
        return len(self._order)

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
        rows = tuple([self._row(position) for position in self._store.index[family_id]])
        return Family(family_id=family_id, rows=rows, columns=self.columns)

    def family_hash(self, family_id: str) -> str:
        """``Family.row_hash`` of a family, without building the family."""
        positions = self._store.index[family_id]
        if not self._unique_columns:
            return rows_hash(self._cells(p) for p in positions)
        texts = []
        for position in positions:
            values = self._store.values(position)
            if None in values:
                return rows_hash(self._cells(p) for p in positions)
            # The same text as rows_hash: cells sorted by column name, pasted in C loops.
            cells = self._hash_order(values)
            texts.append("\x1e".join(map(operator.add, self._hash_prefixes, cells)) + "\x1e"
                         if cells else "")
        return hashlib.sha256("\x1d".join(texts).encode("utf-8")).hexdigest()

    @property
    def has_action_columns(self) -> bool:
        """Whether any action column other than ``Case Id`` is in the header."""
        return self._has_actions

    def _cells(self, position: int) -> dict[str, str]:
        values = self._store.values(position)
        if self._unique_columns and None not in values:
            return dict(zip(self.columns, values, strict=True))  # type: ignore[arg-type]
        # Duplicate names: the rightmost present cell wins, as in the official CLI.
        return {name: v for name, v in zip(self.columns, values, strict=True) if v is not None}

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
                     if _is_proband(self.cell(p, "Relation"))), None)

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
        for position in range(len(self._store)):
            values = self._store.values(position)
            cells = tuple("" if i is None else values[i] or "" for i in indices)
            yield self._store.line(position), cells

    def _row(self, position: int) -> Row:
        return Row(number=self._store.line(position), cells=self._cells(position))


def _picker(indices: list[int]) -> Callable[[Sequence[str | None]], tuple[str, ...]]:
    """A function that picks the cells at *indices*, in that order, as a tuple."""
    if len(indices) == 1:
        only = indices[0]
        return lambda values: (values[only],)  # type: ignore[return-value]
    if not indices:
        return lambda values: ()
    return operator.itemgetter(*indices)


def rows_hash(rows: Iterable[Mapping[str, str]]) -> str:
    """A family's content hash: each row's cells by column name, in file order.

    Cells cannot hold U+001D-U+001F (the reader refuses them), so they separate unambiguously.
    """
    text = "\x1d".join(
        "".join(f"{name}\x1f{cells[name]}\x1e" for name in sorted(cells)
                if name not in _HASH_IGNORED)
        for cells in rows
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _family_order(index: Mapping[str, list[int]]) -> list[str]:
    """Family ids in JavaScript object-key order: array-index keys first, numerically."""
    numeric = sorted(
        (int(key), key) for key in index if _JS_INDEX.match(key) and int(key) < _JS_INDEX_LIMIT
    )
    first = {key for _, key in numeric}
    return [key for _, key in numeric] + [key for key in index if key not in first]


# --------------------------------------------------------------------------- reading


def read_manifest(path: str | Path) -> Manifest:
    """Read and normalise a manifest (official CSV, plain CSV, Parquet or XLSX).

    Raises ``ManifestError`` (with ``problems``) when the file as a whole cannot be used.
    """
    path = Path(path)
    try:
        raw = _read_raw(path)
    except ReadFailure as exc:
        problem = Problem(path.name, exc.row, None, None, None, exc.message, exc.hint)
        raise ManifestError(str(problem), problems=[problem]) from None
    _check_header(path, raw)
    manifest = Manifest(path, raw)
    _add_file_warnings(manifest, raw)
    return manifest


def _read_raw(path: Path) -> RawManifest:
    if not path.exists():
        raise ReadFailure("no such file")
    if not path.is_file():
        raise ReadFailure("not a regular file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return read_parquet(path)
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path)
    if suffix == ".xls":
        raise ReadFailure(
            "old Excel .xls workbooks are not supported", hint="save it as .xlsx or CSV UTF-8"
        )
    return read_csv(path)


def _fail(path: Path, message: str, hint: str | None = None, row: int | None = None) -> None:
    problem = Problem(path.name, row, None, None, None, message, hint)
    raise ManifestError(str(problem), problems=[problem])


def _check_header(path: Path, raw: RawManifest) -> None:
    """Check required columns and data rows."""
    header = raw.header
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if "Sex" not in header and "Gender" not in header:
        missing.append("Sex")
    if len(raw.store) == 0:
        _fail(
            path,
            "there are no data rows under the header",
            "add one row per family member under the header",
        )
    if missing and not _is_update_manifest(raw):
        word = "column" if len(missing) == 1 else "columns"
        _fail(path, f"missing {word}: {';'.join(missing)}", _header_hint(header, missing))


def _is_update_manifest(raw: RawManifest) -> bool:
    """A manifest of existing cases: a ``Case Id`` on every row, no create columns needed."""
    position = rightmost(raw.header, "Case Id")
    if position is None:
        return False
    return all(cell for _, cell in raw.store.column(position))


def _squash(name: str) -> str:
    return re.sub(r"[\s_]+", "", name).lower()


def _header_hint(header: Sequence[str], missing: Sequence[str]) -> str:
    joined = ",".join(header)
    for separator, name in (("\t", "tab"), (";", "semicolon")):
        if separator in joined and joined.count(separator) >= len(missing):
            return f"the file looks {name}-separated; save it as comma-separated CSV UTF-8"
    near = {_squash(name): name for name in header}
    guesses = [f"{near[_squash(m)]!r} for {m!r}" for m in missing if _squash(m) in near]
    if guesses:
        return "names are case- and space-sensitive; found " + ", ".join(guesses)
    return "the header needs Family Id, Case Type, Files Names and Sex (or Gender)"


def _add_file_warnings(manifest: Manifest, raw: RawManifest) -> None:
    name = manifest.path.name
    if raw.kind == "csv":
        manifest.warnings.append(
            Problem(
                name,
                1,
                None,
                None,
                None,
                'no "[Data]" row: the first row is read as the header',
                severity="warning",
            )
        )
    if len(manifest) > OFFICIAL_FAMILY_LIMIT:
        manifest.warnings.append(
            Problem(
                name,
                None,
                None,
                None,
                None,
                f"{len(manifest)} families: the official CLI accepts at most"
                f" {OFFICIAL_FAMILY_LIMIT} (emg-batch has no limit)",
                severity="warning",
            )
        )
    seen: set[str] = set()
    for column in manifest.columns:
        if column in seen:
            manifest.warnings.append(
                Problem(
                    name,
                    None,
                    None,
                    column,
                    None,
                    "the column appears more than once; the rightmost one is used",
                    severity="warning",
                )
            )
        seen.add(column)


# --------------------------------------------------------------------------- results CSV


def _quote(cell: str) -> str:
    if any(char in cell for char in ',"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _line(cells: Sequence[str]) -> str:
    return ",".join(_quote(cell) for cell in cells) + "\n"


def results_header(columns: Sequence[str], *, with_errors: bool, with_case_ids: bool) -> list[str]:
    """The results header: ``Errors`` first when any error, then ``Case Id`` (BEHAVIOUR §4)."""
    header = list(columns)
    for name, wanted in (("Case Id", with_case_ids), ("Errors", with_errors)):
        if wanted:
            if name in header:
                header.remove(name)
            header.insert(0, name)
    return header


def write_results_csv(
    manifest: Manifest,
    out: Path,
    *,
    case_ids: Mapping[str, str],
    errors: Mapping[int, Sequence[str]],
) -> Path:
    """Write the official CLI's results file: new case ids on proband rows, errors by row.

    Written to a temporary file next to *out*, then renamed over it.
    """
    with_errors = any(messages for messages in errors.values())
    header = results_header(manifest.columns, with_errors=with_errors, with_case_ids=bool(case_ids))
    new_ids = _proband_case_ids(manifest, case_ids)
    out = Path(out)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 -- renamed after closing
        "w", encoding="utf-8", newline="", dir=out.parent, prefix=f".{out.name}.", delete=False
    )
    try:
        with handle:
            for cells in manifest.prefix:
                handle.write(_line(cells))
            handle.write(_line(header))
            _write_result_rows(handle, manifest, header, new_ids, errors)
            for cells in manifest.trailer:
                handle.write(_line(cells))
        os.replace(handle.name, out)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return out


def _write_result_rows(handle: IO[str], manifest: Manifest, header: list[str],
                       new_ids: Mapping[int, str], errors: Mapping[int, Sequence[str]]) -> None:
    """Every data row under *header*: the manifest's cells, ``Errors`` and ``Case Id`` filled."""
    where = {name: [i for i, h in enumerate(header) if h == name]
             for name in ("Errors", "Case Id", "Relation")}
    # The csv module quotes exactly as _line does, except that it leaves a lone CR unquoted
    # and writes a row of one empty cell as "".
    exact = len(header) > 1 and not manifest.holds("\r")
    write = (csv.writer(handle, lineterminator="\n").writerow if exact
             else lambda cells: handle.write(_line(cells)))
    for position in range(manifest.row_count):
        number = manifest.row_number(position)
        cells = manifest.row_cells(position)
        values = [cells.get(name, "") for name in header]
        for at in where["Errors"]:
            values[at] = ";".join(errors.get(number, ()))
        for at in where["Case Id"]:
            values[at] = new_ids.get(number, values[at])
        for at in where["Relation"]:
            values[at] = values[at] or "proband"
        write(values)


def _proband_case_ids(manifest: Manifest, case_ids: Mapping[str, str]) -> dict[int, str]:
    """Row number of each proband that gets a new case id."""
    found: dict[int, str] = {}
    for family_id, case_id in case_ids.items():
        position = manifest.proband_position(family_id) if family_id in manifest else None
        if position is not None:
            found[manifest.row_number(position)] = case_id
    return found


