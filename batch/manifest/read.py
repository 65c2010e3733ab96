"""Reading a manifest: any supported file to a checked ``Manifest`` (bytes → records → store).

``read_manifest`` picks the reader by suffix (CSV here; ``parquet``, ``excel``), checks the
header and the data rows, and adds the warnings a careful user wants about the file as a whole.
CSV files (official batch CSV with ``[Data]``, or plain CSV) are read here through the
tokenizer (``csv``); each reader hands ``store.assemble`` numbered records and gets a
``RawManifest`` back.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from pathlib import Path

from batch.errors import ManifestError, ReadFailure
from batch.manifest.archive import column_letters
from batch.manifest.csv import csv_records
from batch.manifest.model import (
    KNOWN_COLUMNS,
    OFFICIAL_FAMILY_LIMIT,
    REQUIRED_COLUMNS,
    Manifest,
    Problem,
    source_name,
)
from batch.manifest.store import RawManifest, assemble, rightmost
from batch.text import quoted

_XLSX = (".xlsx", ".xlsm")
#: Old Excel and LibreOffice workbooks (``batch.manifest.excel``; its KINDS name them).
WORKBOOKS = (".xls", ".ods")
#: Custom-field columns past which a manifest is warned about: each is sent with every case
#: (a lab's own fields are a handful; hundreds are a wrong header row or a pasted export).
CUSTOM_COLUMNS_WARNED = 100


def read_manifest(path: str | Path, *, sheet: str | None = None,
                  include_hidden_rows: bool = False) -> Manifest:
    """Read and normalise a manifest (official CSV, plain CSV, Parquet, XLSX, XLS or ODS).

    *sheet* names the workbook sheet to read (XLSX, XLS, ODS; by default the visible sheet
    that holds the official header). Hidden rows of an XLSX sheet are refused unless
    *include_hidden_rows*. Raises ``ManifestError`` (with ``problems``) when the file as a
    whole cannot be used.
    """
    path = Path(path)
    try:
        raw = _read_raw(path, sheet, include_hidden_rows)
    except ReadFailure as exc:
        problem = Problem(file=source_name(path, exc.sheet), row=exc.row, column=exc.column,
                          value=exc.value, message=exc.message, hint=exc.hint)
        raise ManifestError(str(problem), problems=[problem]) from None
    _check_header(path, raw)
    manifest = Manifest(path, raw)
    _add_file_warnings(manifest, raw)
    return manifest


def _read_raw(path: Path, sheet: str | None, hidden_rows: bool) -> RawManifest:
    if not path.exists():
        raise ReadFailure("no such file")
    if not path.is_file():
        raise ReadFailure("not a regular file")
    suffix = path.suffix.lower()
    if sheet is not None and suffix not in (*_XLSX, *WORKBOOKS):
        raise ReadFailure("--sheet is for workbooks (XLSX, XLS, ODS); this file has no sheets")
    # polars and fastexcel are imported only for the files that need them (a CSV does not)
    if suffix in (".parquet", ".pq"):
        from batch.manifest.parquet import read_parquet

        return read_parquet(path)
    if suffix in _XLSX:
        from batch.manifest.excel import read_xlsx

        return read_xlsx(path, sheet=sheet, hidden_rows=hidden_rows)
    if suffix in WORKBOOKS:
        from batch.manifest.excel import read_workbook

        return read_workbook(path, sheet=sheet)
    return read_csv(path)


def _fail(path: Path, raw: RawManifest, message: str, hint: str | None = None) -> None:
    problem = Problem(file=source_name(path, raw.sheet), message=message, hint=hint)
    raise ManifestError(str(problem), problems=[problem])


def _check_header(path: Path, raw: RawManifest) -> None:
    """Check required columns and data rows."""
    header = raw.header
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if "Sex" not in header and "Gender" not in header:
        missing.append("Sex")
    if len(raw.store) == 0:
        hint = "add one row per family member under the header"
        _fail(path, raw, "there are no data rows under the header", _other_sheets(raw, hint))
    if missing and not _is_update_manifest(raw):
        word = "column" if len(missing) == 1 else "columns"
        hint = _other_sheets(raw, _header_hint(header, missing))
        _fail(path, raw, f"missing {word}: {';'.join(missing)}", hint)


def _other_sheets(raw: RawManifest, hint: str) -> str:
    """*hint*, with the workbook's other sheets when there are any."""
    others = [name for name in raw.sheets if name != raw.sheet]
    if not others:
        return hint
    listed = ", ".join(quoted(name) + (" (hidden)" if name in raw.hidden_sheets else "")
                       for name in others[:10])
    return f"{hint}; other sheets of the workbook: {listed}, chosen with --sheet NAME"


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
    guesses = [f"{quoted(near[_squash(m)])} for {m!r}" for m in missing if _squash(m) in near]
    if guesses:
        return "names are case- and space-sensitive; found " + ", ".join(guesses)
    return "the header needs Family Id, Case Type, Files Names and Sex (or Gender)"


def _add_file_warnings(manifest: Manifest, raw: RawManifest) -> None:
    def warn(message: str, *, row: int | None = None, column: str | None = None) -> None:
        manifest.warnings.append(Problem(file=manifest.source, row=row, column=column,
                                         message=message, severity="warning"))

    if raw.kind == "csv":
        warn('no "[Data]" row: the first row is read as the header', row=1)
    if len(manifest) > OFFICIAL_FAMILY_LIMIT:
        warn(f"{len(manifest)} families: the official CLI accepts at most"
             f" {OFFICIAL_FAMILY_LIMIT} (emg-batch has no limit)")
    custom = {name for name in raw.header if name.strip() and name not in KNOWN_COLUMNS}
    if len(custom) > CUSTOM_COLUMNS_WARNED:
        warn(f"{len(custom):,} columns are custom fields: every family's case carries the "
             f"proband's values of all of them (extra_data); more than {CUSTOM_COLUMNS_WARNED} "
             "is unusual: check that the header row is the right one and that the file holds "
             "only the manifest's columns", row=raw.header_row)
    blank = [i for i, name in enumerate(raw.header) if not name.strip()]
    if blank:  # trailing commas, or blank header cells
        places = [_place(raw, position) for position in blank]
        which = "a column has" if len(blank) == 1 else f"{len(blank)} columns have"
        warn(f"{which} no name ({', '.join(places[:10])}{', ...' if len(places) > 10 else ''})"
             f": empty cells in {'it' if len(blank) == 1 else 'them'} are ignored; a value would"
             " be sent as a custom field with no name", row=raw.header_row)
    for name, positions in duplicated_columns(raw.header).items():
        if not name.strip():
            continue  # said above
        places = [_place(raw, position) for position in positions]
        warn(f"the column appears {len(positions)} times ({', '.join(places)}); the rightmost"
             f" one ({places[-1]}) is used, as the official CLI does", row=raw.header_row,
             column=name)


def duplicated_columns(header: Sequence[str]) -> dict[str, list[int]]:
    """Column names that appear more than once, with their 0-based positions."""
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(header):
        positions.setdefault(name, []).append(position)
    return {name: found for name, found in positions.items() if len(found) > 1}


def _place(raw: RawManifest, position: int) -> str:
    """A column as people find it in a spreadsheet (``column E``), or by its position where
    columns have no letters (Parquet: ``column 5``)."""
    if raw.first_column is None:
        return f"column {position + 1}"
    return f"column {column_letters(raw.first_column + position)}"


_DATA_LINE = re.compile(r'^\s*"?\[Data\]"?\s*(,|$)')


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
