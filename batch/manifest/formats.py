"""File formats to records: CSV text (official or plain), Parquet and XLSX.

CSV goes through our own tokenizer (see ``csv_tokenizer``); Parquet and XLSX through polars.
Each reader hands ``store.assemble`` numbered records and gets a ``RawManifest`` back.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl

from batch.errors import ReadFailure
from batch.manifest.csv_tokenizer import csv_records
from batch.manifest.store import Cell, RawManifest, assemble

_BATCH_ROWS = 10_000
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
