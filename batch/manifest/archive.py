"""A workbook as a zip archive (XLSX, ODS), checked before any workbook reader sees it; what
the archive says that the cell readers do not: its sheets (their parts, the hidden ones), its
merged ranges and hidden rows.

A 1.5 MB workbook can unpack to gigabytes. Before the workbook is parsed, every entry is
checked twice: the sizes the archive declares must stay under the limit, and each entry is
then unpacked as a stream (nothing kept but counts and a few small parts) to prove it unpacks
to exactly its declared size, so a lying header cannot slip a bomb past the first check. The
same pass collects what the reader needs besides the cells: the small parts that map sheet
names to their files (and say which sheets are hidden), each sheet's merged ranges
(``<mergeCell ref="A3:A5"/>``) and its hidden rows (``<row r="7" hidden="1">``: hidden by
hand or filtered out), which the cell readers do not report.

Excel keeps a merged range's value in its first cell; every reader sees the others blank. A
merged ``Family Id`` therefore splits a family (its lower rows get no Family Id), and with
``--skip-invalid`` the proband's case would be created without them. Filling down would guess
what the user meant, with patient data; a merged cell in the header or the data rows is
refused instead, naming the range and its column, and saying how to fix it. Merges above the
header (a ``[Header]`` section) or after the data are harmless and ignored.
"""

from __future__ import annotations

import copy
import os
import posixpath
import re
import xml.etree.ElementTree as ElementTree
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from batch.errors import ReadFailure
from batch.manifest.store import RawManifest
from batch.text import clip, quoted

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
#: A cell that holds a formula and no value: written by a program that does not compute
#: formulas (a script, a library), so a reader finds it blank.
_FORMULA_ONLY = re.compile(
    rb'<(?:\w+:)?c\s[^>]*?\br="([A-Za-z]{1,3}[0-9]{1,7})"[^>]*>\s*'
    rb'<(?:\w+:)?f\b(?:[^>]*/>|[^>]*>[^<]*</(?:\w+:)?f>)\s*'
    rb'(?:<(?:\w+:)?v\s*/>|<(?:\w+:)?v>\s*</(?:\w+:)?v>)?\s*</(?:\w+:)?c>')
_MAX_FORMULAS = 1_000  # formula cells without a value kept per sheet
_HIDDEN = re.compile(rb"""\bhidden\s*=\s*["'](?:1|true)["']""")
_ROW_NUMBER = re.compile(rb"""\br\s*=\s*["']([0-9]{1,7})["']""")
_TIME_TEXT = re.compile(rb" [0-9]{2}:[0-9]{2}:[0-9]{2}")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HINT = f"save the manifest as CSV, split it, or raise the limit: {LIMIT_VARIABLE}=<megabytes>"


@dataclass(slots=True)
class Archive:
    """What the check pass found: small parts by name, merged ranges by part name."""

    parts: dict[str, bytes] = field(default_factory=dict)
    merges: dict[str, list[str]] = field(default_factory=dict)
    hidden_rows: dict[str, list[int]] = field(default_factory=dict)
    """Row numbers (1-based) marked hidden, by part name (parts with none are left out)."""
    unsaved_formulas: dict[str, list[str]] = field(default_factory=dict)
    """Cells (``B5``) holding a formula with no saved value, by part name."""
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
        raise ReadFailure(f"{LIMIT_VARIABLE}={quoted(text, 40)} is not a positive number of"
                          " megabytes")
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
    with zipfile.ZipFile(path) as opened:
        for info in entries:
            _unpack(opened, info, archive, limit)
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
        raise ReadFailure(f"not a readable XLSX workbook ({clip(str(exc), 200)})",
                          hint="open it in Excel and save it again as .xlsx") from None
    if len(entries) > _MAX_ENTRIES:
        raise ReadFailure(f"not a readable XLSX workbook ({len(entries):,} parts)")
    return entries


def _unpack(opened: zipfile.ZipFile, info: zipfile.ZipInfo, archive: Archive,
            limit: int) -> None:
    """Stream one entry: count what it unpacks to, keep what the reader needs."""
    if info.flag_bits & 0x1:
        raise ReadFailure("the workbook is encrypted", hint="save an unprotected copy")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ReadFailure(f"not a readable XLSX workbook (compression method"
                          f" {info.compress_type} in {quoted(info.filename)})")
    # zipfile stops at the declared size and checks the CRC at the end; asked for one byte
    # more, it lets the count below catch a part that unpacks to more than it declares.
    probe = copy.copy(info)
    probe.file_size = info.file_size + 1
    try:
        with opened.open(probe) as stream:
            total = _consume(stream, info, archive, limit)
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc) and _overlong(opened, info):
            raise _bomb(info, 0, limit) from None
        raise _damaged(info, "a damaged zip entry" if "header" in str(exc) else None) from None
    except (zlib.error, EOFError):
        raise _damaged(info, "damaged compressed data") from None
    if total != info.file_size:
        raise _damaged(info)


def _consume(stream: IO[bytes], info: zipfile.ZipInfo, archive: Archive, limit: int) -> int:
    """Read *stream* to its end in pieces; what it unpacked to."""
    keep = _is_small_part(info)
    kept: list[bytes] = []
    merges = archive.merges.setdefault(info.filename, []) if _is_xml(info) else None
    hidden: list[int] = []
    formulas: list[str] = []
    total, tail = 0, b""
    while piece := stream.read(_CHUNK):
        total += len(piece)
        archive.unpacked += len(piece)
        if total > info.file_size or archive.unpacked > limit:
            raise _bomb(info, archive.unpacked, limit)
        if keep:
            kept.append(piece)
        if merges is not None:
            text = tail + piece
            archive.date_like_text = archive.date_like_text or bool(_TIME_TEXT.search(text))
            tail = _scan(text, merges, hidden, formulas)
    if merges is not None:
        _scan(tail, merges, hidden, formulas, last=True)
    if hidden:
        archive.hidden_rows[info.filename] = hidden
    if formulas:
        archive.unsaved_formulas[info.filename] = formulas
    if keep:
        archive.parts[info.filename] = b"".join(kept)
    return total


def _overlong(opened: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Whether a part whose CRC did not match unpacks to more than it declares (a bomb behind
    a lying header) rather than to damaged bytes: read again, one byte past, CRC unchecked."""
    probe = copy.copy(info)
    probe.file_size = info.file_size + 1
    del probe.CRC  # zipfile checks no CRC for an entry without one
    try:
        with opened.open(probe) as stream:
            return len(stream.read(probe.file_size)) > info.file_size
    except (zipfile.BadZipFile, zlib.error, EOFError):
        return False


def _damaged(info: zipfile.ZipInfo, what: str | None = None) -> ReadFailure:
    """A part that does not unpack as the archive says (a bad CRC, a short or broken stream)."""
    detail = what or f"the part {quoted(info.filename)} is damaged"
    return ReadFailure(f"not a readable XLSX workbook ({detail})",
                       hint="open it in Excel and save it again as .xlsx")


def _scan(text: bytes, merges: list[str], hidden: list[int], formulas: list[str], *,
          last: bool = False) -> bytes:
    """Add the merged ranges, hidden rows and formula cells without a value whose tags start
    in *text* (but in its last ``_OVERLAP`` bytes, unless *last*); the tail to prepend to the
    next piece."""
    cut = len(text) if last else max(len(text) - _OVERLAP, 0)
    if b"mergeCell" in text:
        for match in _MERGE.finditer(text):
            if match.start() < cut and len(merges) < _MAX_MERGES:
                merges.append(match.group(1).decode("ascii").upper())
    if b"hidden" in text:
        _scan_rows(text, cut, hidden)
    if b"<f" in text or b":f" in text:
        for match in _FORMULA_ONLY.finditer(text):
            if match.start() < cut and len(formulas) < _MAX_FORMULAS:
                formulas.append(match.group(1).decode("ascii").upper())
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
    return ReadFailure(f"not a readable XLSX workbook (the part {quoted(info.filename)} unpacks"
                       " to more than it declares: damaged or crafted)",
                       hint="open it in Excel and save it again as .xlsx")


def _size(count: int) -> str:
    if count >= 1_000_000_000:
        return f"{count / 1e9:.2f} GB"
    if count >= 10_000_000:
        return f"{count / 1e6:.0f} MB"
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count:,} bytes"


_REF = re.compile(r"^([A-Z]{1,3})([0-9]+)(?::([A-Z]{1,3})([0-9]+))?$")
_MERGE_HINT = ("unmerge the cells and put the value in every row: in Excel, turn Merge & Center"
               " off, then fill down")


def sheet_parts(archive: Archive) -> dict[str, str]:
    """Sheet name → the archive part that holds the sheet (from the workbook's relations)."""
    workbook, root = _workbook(archive)
    folder, base = posixpath.split(workbook)
    rels = posixpath.join(folder, "_rels", base + ".rels")
    found: dict[str, str] = {}
    for element in _sheets(root):
        ident = next((v for k, v in element.attrib.items() if _local(k) == "id"), None)
        target = _target(archive, rels, folder, ident=ident) if ident else None
        if target is not None:
            found[element.attrib.get("name", "")] = target
    return found


def hidden_sheets(archive: Archive) -> frozenset[str]:
    """The names of the sheets the workbook hides (``state="hidden"`` or ``"veryHidden"``):
    old sheets kept for reference, never read unless named."""
    _, root = _workbook(archive)
    return frozenset(element.attrib.get("name", "") for element in _sheets(root)
                     if element.attrib.get("state", "visible") != "visible")


def _workbook(archive: Archive) -> tuple[str, ElementTree.Element | None]:
    """The workbook part's name and its XML (None when it cannot be read)."""
    workbook = _target(archive, "_rels/.rels", "", "officeDocument") or "xl/workbook.xml"
    return workbook, _xml(archive, workbook)


def _sheets(root: ElementTree.Element | None) -> list[ElementTree.Element]:
    return [e for e in root.iter() if _local(e.tag) == "sheet"] if root is not None else []


def check_merges(raw: RawManifest, ranges: Sequence[str]) -> None:
    """Refuse *ranges* (``A3:A5``) of the read sheet that overlap its header or data rows."""
    inside = _inside(raw, [box for box in map(_box, ranges) if box is not None])
    if not inside:
        return
    left, row, right, last = inside[0]
    ref = f"{_letters(left)}{row}:{_letters(right)}{last}"
    more = f" (and {len(inside) - 1} more merged ranges)" if len(inside) > 1 else ""
    raise ReadFailure(
        f"cells {ref} are merged{more}: a merged cell keeps its value in its first cell only,"
        " so the other cells of the range read as blank",
        row=row, column=_column(raw, left), hint=_MERGE_HINT, sheet=raw.sheet)


def check_formulas(raw: RawManifest, cells: Sequence[str]) -> None:
    """Refuse formula cells with no saved value (``B5``) in the read sheet's header or data
    rows: they would read as blank, and a blank is not what the formula says."""
    inside = _inside(raw, [box for box in map(_cell_box, cells) if box is not None])
    if not inside:
        return
    left, row, _, _ = inside[0]
    more = f" (and {len(inside) - 1} more)" if len(inside) > 1 else ""
    raise ReadFailure(
        f"cell {_letters(left)}{row} holds a formula with no saved value{more}: the program "
        "that wrote the workbook did not compute it, so it would read as blank",
        row=row, column=_column(raw, left), sheet=raw.sheet,
        hint="open the workbook in Excel or LibreOffice and save it, which computes its "
        "formulas, or type the values instead")


Box = tuple[int, int, int, int]


def _inside(raw: RawManifest, boxes: Sequence[Box]) -> list[Box]:
    """The *boxes* that overlap the read sheet's header or data rows."""
    first = raw.first_column or 0
    top = raw.header_row
    bottom = raw.store.line(len(raw.store) - 1) if len(raw.store) else top
    return [box for box in boxes if box[1] <= bottom and box[3] >= top
            and box[0] <= first + len(raw.header) and box[2] > first]


def _cell_box(ref: str) -> Box | None:
    """One cell (``B5``) as a box."""
    match = _REF.match(ref)
    if match is None:
        return None
    column, row = _number(match.group(1)), int(match.group(2))
    return column, row, column, row


def _column(raw: RawManifest, left: int) -> str:
    index = left - (raw.first_column or 0) - 1
    return raw.header[index] if 0 <= index < len(raw.header) else f"column {_letters(left)}"


def _box(ref: str) -> tuple[int, int, int, int] | None:
    """``(first column, first row, last column, last row)``, 1-based; None for one cell."""
    match = _REF.match(ref)
    if match is None or match.group(3) is None:
        return None
    left, top = _number(match.group(1)), int(match.group(2))
    right, bottom = _number(match.group(3)), int(match.group(4))
    if (left, top) == (right, bottom):
        return None
    return min(left, right), min(top, bottom), max(left, right), max(top, bottom)


def _number(letters: str) -> int:
    value = 0
    for letter in letters:
        value = value * 26 + ord(letter) - 64
    return value


def _letters(number: int) -> str:
    text = ""
    while number:
        number, rest = divmod(number - 1, 26)
        text = chr(65 + rest) + text
    return text


def column_letters(index: int) -> str:
    """Spreadsheet letters of a 0-based column index (0 → ``A``)."""
    return _letters(index + 1)


def _target(archive: Archive, rels: str, folder: str, kind: str | None = None, *,
            ident: str | None = None) -> str | None:
    """The part a relation points to, by relation type suffix (*kind*) or id (*ident*)."""
    root = _xml(archive, rels)
    for element in root.iter() if root is not None else ():
        attrib = element.attrib
        wanted = (attrib.get("Id") == ident if ident is not None
                  else attrib.get("Type", "").endswith("/" + (kind or "")))
        if _local(element.tag) == "Relationship" and wanted and "Target" in attrib:
            target = attrib["Target"]
            if target.startswith("/"):
                return posixpath.normpath(target.lstrip("/"))
            return posixpath.normpath(posixpath.join(folder, target))
    return None


def _xml(archive: Archive, name: str) -> ElementTree.Element | None:
    data = archive.parts.get(name)
    if data is None:  # zip names are case-sensitive, Excel's look-ups are not
        data = next((v for k, v in archive.parts.items() if k.lower() == name.lower()), None)
    if data is None or b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return None
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
