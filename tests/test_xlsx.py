"""XLSX manifests as first-class as CSV: date cells, the manifest sheet, merged cells, bombs.

Every workbook here is a real XLSX written by xlsxwriter (``tests/workbooks.py``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from batch.errors import ManifestError
from batch.manifest import OFFICIAL_COLUMNS, Manifest, read_manifest
from batch.manifest.archive import LIMIT_VARIABLE, check_archive
from batch.payload import build_payload, check_family, check_manifest_wide
from tests.resolver_fake import FixtureResolver
from tests.workbooks import Cell, declare_size, padded_copy, write_workbook

HEADER: list[Cell] = list(OFFICIAL_COLUMNS)
NOTES: list[list[Cell]] = [["How to fill in this workbook"], ["Family Id: one per case"]]


def _member(family: str, sample: str, relation: str, **cells: Cell) -> list[Cell]:
    values: dict[str, Cell] = {
        "Family Id": family, "Case Type": "Exome", "Files Names": f"/a/{sample}.vcf",
        "BioSample Name": sample, "Storage Provider Id": 461, "Relation": relation, "Sex": "F",
        "Phenotypes": "unaffected",
    }
    values.update({name.replace("_", " "): value for name, value in cells.items()})
    return [values.get(str(name)) for name in HEADER]


def _trio(**proband: Cell) -> list[list[Cell]]:
    return [HEADER, _member("F1", "S1", "proband", **proband), _member("F1", "S2", "mother"),
            _member("F1", "S3", "father")]


def _problems(manifest: Manifest) -> list[Any]:
    problems = check_manifest_wide(manifest)
    for family in manifest.families():
        problems += asyncio.run(check_family(family, FixtureResolver(), file=manifest.source))
    return problems


def _payload(manifest: Manifest) -> dict[str, Any]:
    (family,) = manifest.families()
    return asyncio.run(build_payload(family, FixtureResolver()))


# --------------------------------------------------------------------------- date cells


def test_date_cells_read_as_dates_and_send_what_the_csv_sends(tmp_path: Path) -> None:
    rows = _trio(Date_Of_Birth=dt.date(2021, 3, 14), Due_Date=dt.datetime(2025, 12, 1))
    path = write_workbook(tmp_path / "m.xlsx", {"Cases": rows})
    assert not check_archive(path).date_like_text  # one read tells date cells from text
    xlsx = read_manifest(path)
    proband = xlsx.family("F1").rows[0]
    assert proband.cells["Date Of Birth"] == "2021-03-14"
    assert proband.cells["Due Date"] == "2025-12-01"
    assert _problems(xlsx) == []
    text = [[cell if not isinstance(cell, dt.date) else cell.strftime("%Y-%m-%d")
             for cell in row] for row in rows]
    csv = tmp_path / "m.csv"
    csv.write_text("\n".join(",".join("" if c is None else str(c) for c in r) for r in text))
    payload = _payload(xlsx)
    assert payload == _payload(read_manifest(csv))
    assert payload["test_data"]["patients"]["proband"]["date_of_birth"] == "2021-03-14"
    assert payload["test_data"]["due_date"] == "2025-12-01"


def test_a_date_time_keeps_its_time_and_the_date_rule_refuses_it(tmp_path: Path) -> None:
    """A time of day is never dropped silently: the official date rule refuses the cell."""
    rows = _trio(Date_Of_Birth=dt.datetime(2021, 3, 14, 10, 30))
    manifest = read_manifest(write_workbook(tmp_path / "m.xlsx", {"Cases": rows}))
    assert manifest.family("F1").rows[0].cells["Date Of Birth"] == "2021-03-14 10:30:00"
    (error,) = [p for p in _problems(manifest) if p.severity == "error"]
    assert str(error).startswith("m.xlsx[Cases]:2: family F1: Date Of Birth = "
                                 "'2021-03-14 10:30:00': Date Of Birth is not valid")


def test_text_that_looks_like_a_date_stays_as_typed(tmp_path: Path) -> None:
    rows = _trio(Date_Of_Birth="2021-03-14 00:00:00")
    rows[2][HEADER.index("Date Of Birth")] = dt.date(1990, 1, 2)
    rows[3][HEADER.index("Date Of Birth")] = dt.datetime(1991, 2, 3, 4, 5, 6)
    path = write_workbook(tmp_path / "m.xlsx", {"Cases": rows})
    assert check_archive(path).date_like_text  # a second, typed read tells them apart
    proband, mother, father = read_manifest(path).family("F1").rows
    assert proband.cells["Date Of Birth"] == "2021-03-14 00:00:00"  # text cell: verbatim
    assert mother.cells["Date Of Birth"] == "1990-01-02"  # date cell in the same column
    assert father.cells["Date Of Birth"] == "1991-02-03 04:05:06"


def test_numbers_booleans_and_times(tmp_path: Path) -> None:
    rows = _trio(Kit_Id=7.0, Boost_Genes=True, Clinical_Notes=dt.datetime(1899, 12, 31, 12, 0))
    manifest = read_manifest(write_workbook(tmp_path / "m.xlsx", {"Cases": rows}))
    cells = manifest.family("F1").rows[0].cells
    assert (cells["Kit Id"], cells["Boost Genes"], cells["Storage Provider Id"]) == ("7", "true",
                                                                                    "461")
    assert cells["Clinical Notes"] == "12:00:00"  # a time-only cell is Excel's day 0


# --------------------------------------------------------------------------- the sheet


def test_the_sheet_with_the_official_header_is_read(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "m.xlsx", {"Notes": NOTES, "Cases": _trio(Sex="X")})
    manifest = read_manifest(path)
    assert (manifest.sheet, manifest.source, manifest.family_ids) == ("Cases", "m.xlsx[Cases]",
                                                                       ["F1"])
    errors = [str(p) for p in _problems(manifest) if p.severity == "error"]
    assert errors == ["m.xlsx[Cases]:2: family F1: Sex = 'X': Sex is not valid"
                      " (M, F, U, Male, Female or Unknown)"]


def test_an_update_manifest_sheet_is_found_by_case_id(tmp_path: Path) -> None:
    update: list[list[Cell]] = [["Case Id", "Set Status"], ["EMG1", "delivered"]]
    manifest = read_manifest(write_workbook(tmp_path / "m.xlsx", {"Notes": NOTES,
                                                                  "Update": update}))
    assert manifest.sheet == "Update" and manifest.family_ids == ["EMG1"]


def test_sheet_option_overrides_and_unknown_names_list_the_sheets(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "m.xlsx", {"Cases": _trio(), "Retest": _trio(Sex="M")})
    assert read_manifest(path, sheet="Retest").family("F1").rows[0].cells["Sex"] == "M"
    assert read_manifest(path, sheet="retest").sheet == "Retest"  # Excel's names ignore case
    with pytest.raises(ManifestError) as caught:
        read_manifest(path, sheet="Nope")
    assert str(caught.value) == ("m.xlsx: the workbook has no sheet named 'Nope'; its sheets:"
                                 " 'Cases', 'Retest' (pass --sheet with one of these names)")
    csv = tmp_path / "m.csv"
    csv.write_text("Family Id\nF1\n")
    with pytest.raises(ManifestError, match="--sheet is for workbooks \\(XLSX, XLS, ODS\\)"):
        read_manifest(csv, sheet="Cases")


def test_no_sheet_with_a_header_names_the_sheet_and_the_others(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "m.xlsx", {"Notes": NOTES, "More": NOTES})
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    message = str(caught.value)
    assert message.startswith("m.xlsx[Notes]: missing columns: Family Id;Case Type;")
    assert "other sheets of the workbook: 'More', chosen with --sheet NAME" in message


def test_file_warnings_name_the_sheet(tmp_path: Path) -> None:
    rows = _trio()
    rows[0] = [*HEADER, "BioSample Name"]
    rows[1] = [*rows[1], "S1"]
    manifest = read_manifest(write_workbook(tmp_path / "m.xlsx", {"Notes": NOTES,
                                                                  "Cases": rows}))
    (warning,) = manifest.warnings
    assert str(warning) == (
        "m.xlsx[Cases]:1: BioSample Name: warning: the column appears 2 times (column E, column"
        " X); the rightmost one (column X) is used, as the official CLI does")


# --------------------------------------------------------------------------- merged cells


def test_merged_family_id_is_refused_naming_range_sheet_and_column(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "m.xlsx", {"Notes": NOTES, "Cases": _trio()},
                          merges={"Cases": [("A2:A4", "F1")]})
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    assert str(caught.value) == (
        "m.xlsx[Cases]:2: Family Id: cells A2:A4 are merged: a merged cell keeps its value in"
        " its first cell only, so the other cells of the range read as blank (unmerge the"
        " cells and put the value in every row: in Excel, turn Merge & Center off, then fill"
        " down)")


def test_merges_are_found_in_workbooks_of_other_writers(tmp_path: Path) -> None:
    """openpyxl names sheet parts by absolute paths (``/xl/worksheets/sheet2.xml``)."""
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Notes"
    sheet = book.create_sheet("Cases")
    for row in _trio(Date_Of_Birth=dt.date(2021, 3, 14)):
        sheet.append(row)
    book.save(tmp_path / "plain.xlsx")
    manifest = read_manifest(tmp_path / "plain.xlsx")
    assert manifest.family("F1").rows[0].cells["Date Of Birth"] == "2021-03-14"
    sheet.merge_cells("A3:A4")
    book.save(tmp_path / "merged.xlsx")
    with pytest.raises(ManifestError, match=r"^merged\.xlsx\[Cases\]:3: Family Id: cells A3:A4"):
        read_manifest(tmp_path / "merged.xlsx")


def test_merges_outside_the_data_are_harmless(tmp_path: Path) -> None:
    rows: list[list[Cell]] = [["Lab manifest"], [], ["[Data]"], *_trio(), [], ["footer"]]
    path = write_workbook(tmp_path / "m.xlsx", {"Cases": rows},
                          merges={"Cases": [("A1:D2", "Lab manifest"), ("A9:C10", "footer")]})
    manifest = read_manifest(path)
    assert [row.number for row in manifest.family("F1").rows] == [5, 6, 7]


def test_several_merges_are_counted_and_columns_beyond_a_are_named(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "m.xlsx", {"Cases": _trio()},
                          merges={"Cases": [("B2:B3", "Exome"), ("L3:M3", "unaffected")]})
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    assert str(caught.value).startswith(
        "m.xlsx[Cases]:2: Case Type: cells B2:B3 are merged (and 1 more merged ranges):")


@pytest.mark.slow
def test_a_merged_family_is_never_created_in_part(tmp_path: Path) -> None:
    """The first-hour report: with --skip-invalid the proband was created without its
    mother. The file is refused as a whole before anything is sent."""
    from tests.hostile import Hostile, run_case

    write_workbook(tmp_path / "m.xlsx", {"Cases": _trio()}, merges={"Cases": [("A2:A3", "F1")]})
    outcome = run_case(Hostile("merged", ("run", "m.xlsx", "--sandbox", "--skip-invalid"), 2,
                               "merged"), tmp_path)
    assert outcome.code == 2, outcome.stderr
    assert "cells A2:A3 are merged" in outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert not list(tmp_path.glob("*.ledger.sqlite"))


# --------------------------------------------------------------------------- zip bombs


def _plain(tmp_path: Path) -> Path:
    return write_workbook(tmp_path / "plain.xlsx", {"Cases": _trio()})


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LIMIT_VARIABLE, "2")
    bomb = padded_copy(_plain(tmp_path), tmp_path / "bomb.xlsx",
                       sheet_part="xl/worksheets/sheet1.xml", pad=5_000_000)
    assert bomb.stat().st_size < 50_000
    with pytest.raises(ManifestError) as caught:
        read_manifest(bomb)
    assert str(caught.value).startswith(
        "bomb.xlsx: the workbook unpacks to 5.0 MB, more than the 2.0 MB limit")
    assert LIMIT_VARIABLE in str(caught.value)
    monkeypatch.setenv(LIMIT_VARIABLE, "10")
    assert read_manifest(bomb).family_ids == ["F1"]  # blanks between cells: a valid sheet


def test_an_archive_that_understates_its_size_is_caught_while_unpacking(tmp_path: Path) -> None:
    """Declared sizes can lie; the stream is counted against them as it is unpacked."""
    padded = padded_copy(_plain(tmp_path), tmp_path / "p.xlsx",
                         sheet_part="xl/worksheets/sheet1.xml", pad=3_000_000)
    liar = tmp_path / "liar.xlsx"
    liar.write_bytes(_without_zip64(padded))
    declare_size(liar, "xl/worksheets/sheet1.xml", 1_000)
    with pytest.raises(ManifestError, match="unpacks to more than it declares"):
        read_manifest(liar)
    assert check_archive(padded, limit=4_000_000).unpacked > 3_000_000  # honest: accepted


def _without_zip64(path: Path) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info))
    return buffer.getvalue()


def test_the_default_limit_refuses_a_huge_declared_size(tmp_path: Path) -> None:
    path = declare_size(_plain(tmp_path), "xl/worksheets/sheet1.xml", 1_600_000_000)
    with pytest.raises(ManifestError, match=r"unpacks to 1\.60 GB, more than the 200 MB limit"):
        read_manifest(path)


def test_a_bad_limit_setting_is_one_clear_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LIMIT_VARIABLE, "lots")
    with pytest.raises(ManifestError, match="EMG_XLSX_MAX_MB='lots' is not a positive number"):
        read_manifest(_plain(tmp_path))


def test_a_damaged_part_is_named(tmp_path: Path) -> None:
    path = _plain(tmp_path)
    data = bytearray(path.read_bytes())
    data[data.index(b"xl/worksheets/sheet1.xml") + 60] ^= 0xFF  # inside the compressed data
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="not a readable XLSX workbook"):
        read_manifest(path)
