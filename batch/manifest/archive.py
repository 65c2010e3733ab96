"""An XLSX file as a zip archive, checked before any workbook reader sees it.

A 1.5 MB workbook can unpack to gigabytes. Before the workbook is parsed, every entry is
checked twice: the sizes the archive declares must stay under the limit, and each entry is
then unpacked as a stream (nothing kept but counts and a few small parts) to prove it unpacks
to exactly its declared size, so a lying header cannot slip a bomb past the first check. The
same pass collects what the reader needs besides the cells: the small parts that map sheet
names to their files (and say which sheets are hidden), each sheet's merged ranges
(``<mergeCell ref="A3:A5"/>``) and its hidden rows (``<row r="7" hidden="1">``: hidden by
hand or filtered out), which the cell readers do not report.
"""

from __future__ import annotations

import os
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from batch.errors import ReadFailure

#: Default cap on the unpacked size of a workbook, in MB (``EMG_XLSX_MAX_MB`` overrides).
DEFAULT_LIMIT_MB = 200
LIMIT_VARIABLE = "EMG_XLSX_MAX_MB"
_MAX_ENTRIES = 10_000
_SMALL_PART = 4 << 20  # workbook.xml and .rels parts are kept up to this size
_MAX_MERGES = 1_000  # merged ranges kept per sheet (the rest only counted)
_MAX_HIDDEN = 100_000  # hidden rows kept per sheet
_CHUNK = 1 << 20
_OVERLAP = 512  # bytes kept between chunks so that a <mergeCell .../> is never cut
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s[^>]*?\bref="([A-Za-z]{1,3}[0-9]{1,7}'
                    rb'(?::[A-Za-z]{1,3}[0-9]{1,7})?)"')
_ROW = re.compile(rb"<(?:\w+:)?row\s([^>]*)>")
_HIDDEN = re.compile(rb"""\bhidden\s*=\s*["'](?:1|true)["']""")
_ROW_NUMBER = re.compile(rb"""\br\s*=\s*["']([0-9]{1,7})["']""")
_TIME_TEXT = re.compile(rb" [0-9]{2}:[0-9]{2}:[0-9]{2}")
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HINT = f"save the manifest as CSV, split it, or raise the limit: {LIMIT_VARIABLE}=<megabytes>"


@dataclass(slots=True)
class Archive:
    """What the check pass found: small parts by name, merged ranges by part name."""

    parts: dict[str, bytes] = field(default_factory=dict)
    merges: dict[str, list[str]] = field(default_factory=dict)
    hidden_rows: dict[str, list[int]] = field(default_factory=dict)
    """Row numbers (1-based) marked hidden, by part name (parts with none are left out)."""
    unpacked: int = 0
    date_like_text: bool = False
    """Whether any part holds text like `` 10:30:00``: then a text cell may read like a date
    cell (``2021-03-14 00:00:00``), and telling them apart takes a second, typed read."""


def limit_bytes() -> int:
    """The unpacked-size cap: ``EMG_XLSX_MAX_MB`` megabytes, else the default."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_LIMIT_MB * 1_000_000
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = -1.0
    if not megabytes > 0:
        raise ReadFailure(f"{LIMIT_VARIABLE}={text[:40]!r} is not a positive number of megabytes")
    return int(megabytes * 1_000_000)


def check_archive(path: Path, *, limit: int | None = None) -> Archive:
    """Check *path* as an XLSX archive (sizes, compression) and collect parts and merges."""
    limit = limit_bytes() if limit is None else limit
    entries = _entries(path)
    declared = sum(info.file_size for info in entries)
    if declared > limit:
        raise ReadFailure(
            f"the workbook unpacks to {_size(declared)}, more than the {_size(limit)} limit:"
            " a zip bomb, or a very large workbook", hint=_HINT)
    archive = Archive()
    with path.open("rb") as handle:
        for info in entries:
            _unpack(handle, info, archive, limit)
    return archive


def _entries(path: Path) -> list[zipfile.ZipInfo]:
    with path.open("rb") as handle:
        magic = handle.read(8)
    if magic == _OLE_MAGIC:
        raise ReadFailure(
            "the workbook is encrypted (password-protected) or an old .xls file",
            hint="save an unprotected copy as .xlsx, or as CSV UTF-8")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise ReadFailure(f"not a readable XLSX workbook ({str(exc)[:200]})",
                          hint="open it in Excel and save it again as .xlsx") from None
    if len(entries) > _MAX_ENTRIES:
        raise ReadFailure(f"not a readable XLSX workbook ({len(entries):,} parts)")
    return entries


def _unpack(handle: BinaryIO, info: zipfile.ZipInfo, archive: Archive, limit: int) -> None:
    """Stream one entry: count what it unpacks to, keep what the reader needs."""
    if info.flag_bits & 0x1:
        raise ReadFailure("the workbook is encrypted", hint="save an unprotected copy")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ReadFailure(f"not a readable XLSX workbook (compression method"
                          f" {info.compress_type} in {info.filename[:100]!r})")
    keep = _is_small_part(info)
    kept: list[bytes] = []
    merges = archive.merges.setdefault(info.filename, []) if _is_xml(info) else None
    hidden: list[int] = []
    total, crc, tail = 0, 0, b""
    for piece in _pieces(handle, info):
        total += len(piece)
        archive.unpacked += len(piece)
        if total > info.file_size or archive.unpacked > limit:
            raise _bomb(info, archive.unpacked, limit)
        crc = zlib.crc32(piece, crc)
        if keep:
            kept.append(piece)
        if merges is not None:
            text = tail + piece
            archive.date_like_text = archive.date_like_text or bool(_TIME_TEXT.search(text))
            tail = _scan(text, merges, hidden)
    if merges is not None:
        _scan(tail, merges, hidden, last=True)
    if hidden:
        archive.hidden_rows[info.filename] = hidden
    if total != info.file_size or crc != info.CRC:
        raise ReadFailure(f"not a readable XLSX workbook (the part {info.filename[:100]!r}"
                          " is damaged)", hint="open it in Excel and save it again as .xlsx")
    if keep:
        archive.parts[info.filename] = b"".join(kept)


def _pieces(handle: BinaryIO, info: zipfile.ZipInfo) -> _Inflate:
    handle.seek(info.header_offset)
    header = handle.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise ReadFailure("not a readable XLSX workbook (a damaged zip entry)")
    fields = _LOCAL_HEADER.unpack(header)
    handle.seek(info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1])
    return _Inflate(handle, info.compress_size, info.compress_type == zipfile.ZIP_DEFLATED)


class _Inflate:
    """The unpacked bytes of one entry, in pieces of at most ``_CHUNK`` bytes."""

    def __init__(self, handle: BinaryIO, size: int, deflated: bool) -> None:
        self._handle = handle
        self._left = size
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS) if deflated else None

    def __iter__(self) -> _Inflate:
        return self

    def __next__(self) -> bytes:
        inflater = self._inflater
        while True:
            if inflater is not None and inflater.unconsumed_tail:
                return inflater.decompress(inflater.unconsumed_tail, _CHUNK)
            if self._left <= 0 or (inflater is not None and inflater.eof):
                raise StopIteration
            data = self._handle.read(min(self._left, _CHUNK))
            if not data:
                raise StopIteration
            self._left -= len(data)
            if inflater is None:
                return data
            try:
                piece = inflater.decompress(data, _CHUNK)
            except zlib.error:
                raise ReadFailure("not a readable XLSX workbook (damaged compressed data)",
                                  hint="open it in Excel and save it again") from None
            if piece:
                return piece


def _scan(text: bytes, merges: list[str], hidden: list[int], *, last: bool = False) -> bytes:
    """Add the merged ranges and hidden rows whose tags start in *text* (but in its last
    ``_OVERLAP`` bytes, unless *last*); the tail to prepend to the next piece."""
    cut = len(text) if last else max(len(text) - _OVERLAP, 0)
    if b"mergeCell" in text:
        for match in _MERGE.finditer(text):
            if match.start() < cut and len(merges) < _MAX_MERGES:
                merges.append(match.group(1).decode("ascii").upper())
    if b"hidden" in text:
        _scan_rows(text, cut, hidden)
    return text[cut:]


def _scan_rows(text: bytes, cut: int, hidden: list[int]) -> None:
    """Add the numbers of the rows *text* marks hidden (tags starting before *cut*)."""
    for match in _ROW.finditer(text):
        attributes = match.group(1)
        if match.start() >= cut or len(hidden) >= _MAX_HIDDEN or not _HIDDEN.search(attributes):
            continue
        number = _ROW_NUMBER.search(attributes)
        if number is not None:
            hidden.append(int(number.group(1)))


def _is_small_part(info: zipfile.ZipInfo) -> bool:
    name = info.filename.lower()
    return info.file_size <= _SMALL_PART and (name.endswith(".rels")
                                               or name.endswith("workbook.xml"))


def _is_xml(info: zipfile.ZipInfo) -> bool:
    return info.filename.lower().endswith(".xml")


def _bomb(info: zipfile.ZipInfo, unpacked: int, limit: int) -> ReadFailure:
    if unpacked > limit:
        return ReadFailure(f"the workbook unpacks to more than the {_size(limit)} limit:"
                           " a zip bomb, or a very large workbook", hint=_HINT)
    return ReadFailure(f"not a readable XLSX workbook (the part {info.filename[:100]!r} unpacks"
                       " to more than it declares: damaged or crafted)",
                       hint="open it in Excel and save it again as .xlsx")


def _size(count: int) -> str:
    if count >= 1_000_000_000:
        return f"{count / 1e9:.2f} GB"
    if count >= 10_000_000:
        return f"{count / 1e6:.0f} MB"
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count:,} bytes"
