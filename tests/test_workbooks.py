"""``.xls`` and ``.ods`` manifests, made by LibreOffice from an XLSX, read as the XLSX is read:
the sheet chosen (hidden sheets skipped), date cells as dates, merged cells and hidden rows
refused where the file says where they are (``.ods``), and the size cap."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from batch.cli import main
from batch.errors import ManifestError
from batch.manifest import read_manifest

SOFFICE = shutil.which("soffice")
pytestmark = pytest.mark.skipif(
    SOFFICE is None, reason="LibreOffice (soffice) is not installed: it makes the .xls and "
                            ".ods files of these tests (apt-get install libreoffice-calc-nogui)")
HEADER = ["Family Id", "Case Type", "Files Names", "BioSample Name", "Sex", "Date Of Birth",
          "Relation", "Storage Provider Id", "Phenotypes"]
ROWS = [["F1", "Whole Genome", "s3://b/a.fastq.gz", "S1", "male", datetime.date(2020, 2, 2),
         "proband", 1, "Seizure"],
        ["F2", "Whole Genome", "s3://b/b.fastq.gz", "S2", "female", "2021-03-04", "proband", 1,
         "Seizure"],
        ["F3", "Exome", "s3://b/c.fastq.gz", "S3", "female", None, "proband", 1, "Seizure"]]


def _workbook(path: Path, *, merge: bool = False, hide_row: bool = False) -> Path:
    """A hidden sheet of notes first, then the manifest sheet."""
    book = openpyxl.Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "Notes"
    notes["A1"] = "not the manifest"
    notes.sheet_state = "hidden"
    sheet = book.create_sheet("Cases")
    for row in [HEADER, *ROWS]:
        sheet.append(row)
    if merge:
        sheet.merge_cells("A4:B4")
    if hide_row:
        sheet.row_dimensions[3].hidden = True
    book.save(path)
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workbooks as LibreOffice saves them: clean, merged, hidden row; .xls and .ods."""
    folder = tmp_path_factory.mktemp("workbooks")
    sources = [_workbook(folder / "clean.xlsx"), _workbook(folder / "merged.xlsx", merge=True),
               _workbook(folder / "hidden.xlsx", hide_row=True)]
    assert SOFFICE is not None
    profile = (folder / "lo-profile").as_uri()
    for kind in ("xls", "ods"):
        subprocess.run([SOFFICE, f"-env:UserInstallation={profile}", "--headless",
                        "--convert-to", kind, "--outdir", str(folder), *map(str, sources)],
                       capture_output=True, check=True, timeout=180)
    return folder


def _cells(path: Path, **kwargs: str) -> list[tuple[int, str, str, str]]:
    manifest = read_manifest(path, **kwargs)
    return [(r.number, r.cells["Family Id"], r.cells["Case Type"], r.cells["Date Of Birth"])
            for family in manifest.families() for r in family.rows]


EXPECTED = [(2, "F1", "Whole Genome", "2020-02-02"), (3, "F2", "Whole Genome", "2021-03-04"),
            (4, "F3", "Exome", "")]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["xls", "ods"])
def test_read_as_the_xlsx_is_read(made: Path, suffix: str) -> None:
    assert _cells(made / "clean.xlsx") == EXPECTED
    assert _cells(made / f"clean.{suffix}") == EXPECTED  # the hidden Notes sheet skipped


@pytest.mark.parametrize("suffix", ["xls", "ods"])
def test_a_hidden_sheet_is_read_when_named(made: Path, suffix: str) -> None:
    with pytest.raises(ManifestError) as raised:
        read_manifest(made / f"clean.{suffix}", sheet="Notes")
    assert str(raised.value).startswith(f"clean.{suffix}[Notes]: there are no data rows")
    assert _cells(made / f"clean.{suffix}", sheet="cases") == EXPECTED


def test_merged_cells_of_an_ods_are_refused(made: Path) -> None:
    with pytest.raises(ManifestError) as raised:
        read_manifest(made / "merged.ods")
    assert str(raised.value).startswith("merged.ods[Cases]:4: Family Id: cells A4:B4 are merged")


def test_hidden_rows_of_an_ods_are_refused(made: Path) -> None:
    with pytest.raises(ManifestError) as raised:
        read_manifest(made / "hidden.ods")
    assert str(raised.value) == (
        "hidden.ods[Cases]:3: row 3 is hidden: a hidden row would be sent without being seen "
        "(unhide the rows (or delete them) in the spreadsheet program, save, and run again)")


@pytest.mark.parametrize("suffix", ["xls", "ods"])
def test_the_size_cap(made: Path, suffix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMG_XLSX_MAX_MB", "0.001")
    with pytest.raises(ManifestError, match=r"more than the .* limit"):
        read_manifest(made / f"clean.{suffix}")


def test_an_unreadable_xls_is_one_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "m.xls"
    fake.write_bytes(b"not a workbook at all")
    with pytest.raises(ManifestError) as raised:
        read_manifest(fake)
    assert str(raised.value).startswith("m.xls: not a readable old Excel .xls workbook (")


@pytest.mark.parametrize("suffix", ["xls", "ods"])
def test_validate_reads_them(made: Path, suffix: str) -> None:
    result = CliRunner().invoke(main, ["validate", str(made / f"clean.{suffix}")],
                                env={"EMG_HOST": ""}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1].startswith(f"clean.{suffix}: 3 families, 0 errors, ")
