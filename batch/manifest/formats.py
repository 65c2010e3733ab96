"""CSV files to records: official batch CSV (with ``[Data]``) or plain CSV.

CSV goes through our own tokenizer (see ``csv_tokenizer``); Parquet and XLSX have modules of
their own (``parquet``, ``xlsx``). Each reader hands ``store.assemble`` numbered records and
gets a ``RawManifest`` back.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from batch.errors import ReadFailure
from batch.manifest.csv_tokenizer import csv_records
from batch.manifest.store import RawManifest, assemble

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
