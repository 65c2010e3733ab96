"""Merged cells in a workbook sheet: found in the archive, refused in the data area.

Excel keeps a merged range's value in its first cell; every reader sees the others blank. A
merged ``Family Id`` therefore splits a family (its lower rows get no Family Id), and with
``--skip-invalid`` the proband's case would be created without them. Filling down would guess
what the user meant, with patient data; a merged cell in the header or the data rows is
refused instead, naming the range and its column, and saying how to fix it. Merges above the
header (a ``[Header]`` section) or after the data are harmless and ignored.
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence

from batch.errors import ReadFailure
from batch.manifest.archive import Archive
from batch.manifest.store import RawManifest

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
    first = raw.first_column or 0
    top = raw.header_row
    bottom = raw.store.line(len(raw.store) - 1) if len(raw.store) else top
    inside = [box for box in map(_box, ranges)
              if box is not None and box[1] <= bottom and box[3] >= top
              and box[0] <= first + len(raw.header) and box[2] > first]
    if not inside:
        return
    left, row, right, last = inside[0]
    ref = f"{_letters(left)}{row}:{_letters(right)}{last}"
    index = left - first - 1
    column = raw.header[index] if 0 <= index < len(raw.header) else f"column {_letters(left)}"
    more = f" (and {len(inside) - 1} more merged ranges)" if len(inside) > 1 else ""
    raise ReadFailure(
        f"cells {ref} are merged{more}: a merged cell keeps its value in its first cell only,"
        " so the other cells of the range read as blank",
        row=row, column=column, hint=_MERGE_HINT, sheet=raw.sheet)


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
