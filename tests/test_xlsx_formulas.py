"""A formula cell with no saved value (a workbook written by a script or a library that does
not compute formulas) is refused by name, never read as a blank ("Case Type is required")."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from tests.cli_sandbox import invoke

HEADER = ["Family Id", "Case Type", "Files Names", "Sample Type", "BioSample Name", "Relation",
          "Sex", "Phenotypes"]


def workbook(path: Path, formula_cell: str, *, sheet_name: str = "Sheet") -> Path:
    """A one-family manifest whose *formula_cell* of *sheet_name* (the manifest's, or a Notes
    sheet after it) holds a formula openpyxl saves unevaluated."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.append(["F1", "Exome", "", "FASTQ", "P1", "proband", "M", "Seizure"])
    target = sheet if sheet_name == "Sheet" else book.create_sheet(sheet_name)
    target[formula_cell] = '=CONCATENATE("Ex","ome")'
    book.save(path)
    return path


def test_a_formula_without_a_saved_value_is_refused_by_its_cell(tmp_path: Path) -> None:
    result = invoke("validate", str(workbook(tmp_path / "m.xlsx", "B2")), "--sandbox")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        "Error: m.xlsx[Sheet]:2: Case Type: cell B2 holds a formula with no saved value: the "
        "program that wrote the workbook did not compute it, so it would read as blank (open "
        "the workbook in Excel or LibreOffice and save it, which computes its formulas, or type "
        "the values instead)")


def test_a_formula_outside_the_manifest_is_left_alone(tmp_path: Path) -> None:
    path = workbook(tmp_path / "m.xlsx", "B2", sheet_name="Notes")
    result = invoke("validate", str(path), "--sandbox")
    assert result.exit_code == 0, result.stderr
