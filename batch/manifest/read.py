"""Reading a manifest: any supported file to a checked ``Manifest`` (bytes → records → store).

``read_manifest`` picks the reader by suffix (``formats``), checks the header and the data rows,
and adds the warnings a careful user wants about the file as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from batch.errors import ManifestError, ReadFailure
from batch.manifest.columns import OFFICIAL_FAMILY_LIMIT, REQUIRED_COLUMNS
from batch.manifest.formats import read_csv, read_parquet, read_xlsx
from batch.manifest.model import Manifest, Problem
from batch.manifest.store import RawManifest, rightmost


def read_manifest(path: str | Path) -> Manifest:
    """Read and normalise a manifest (official CSV, plain CSV, Parquet or XLSX).

    Raises ``ManifestError`` (with ``problems``) when the file as a whole cannot be used.
    """
    path = Path(path)
    try:
        raw = _read_raw(path)
    except ReadFailure as exc:
        problem = Problem(file=path.name, row=exc.row, message=exc.message, hint=exc.hint)
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
    problem = Problem(file=path.name, row=row, message=message, hint=hint)
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
    def warn(message: str, *, row: int | None = None, column: str | None = None) -> None:
        manifest.warnings.append(Problem(file=manifest.path.name, row=row, column=column,
                                         message=message, severity="warning"))

    if raw.kind == "csv":
        warn('no "[Data]" row: the first row is read as the header', row=1)
    if len(manifest) > OFFICIAL_FAMILY_LIMIT:
        warn(f"{len(manifest)} families: the official CLI accepts at most"
             f" {OFFICIAL_FAMILY_LIMIT} (emg-batch has no limit)")
    seen: set[str] = set()
    for column in manifest.columns:
        if column in seen:
            warn("the column appears more than once; the rightmost one is used", column=column)
        seen.add(column)
