"""Hostile manifests: files a user may feed ``run`` or ``validate``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl

from tests.hostile import HEADER, Hostile, csv_file
from tests.workbooks import Cell, padded_copy, write_workbook

GOOD = "F1,Exome,,FASTQ,S1,,proband,M,Seizure"
NOTES: list[list[Cell]] = [["How to fill in the Cases sheet"]]


def _rows(*extra: tuple[str, Cell]) -> list[list[Cell]]:
    names: list[Cell] = [*HEADER.split(","), *(name for name, _ in extra)]
    cells: list[Cell] = [*GOOD.split(","), *(value for _, value in extra)]
    return [names, cells]


def _workbook(sheets: dict[str, list[list[Cell]]],
              merges: dict[str, list[tuple[str, str]]] | None = None) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        write_workbook(folder / "m.xlsx", sheets, merges=merges)
    return write


def _bomb(folder: Path) -> None:
    plain = write_workbook(folder / "plain.xlsx", {"Cases": _rows()})
    padded_copy(plain, folder / "m.xlsx", sheet_part="xl/worksheets/sheet1.xml", pad=3_000_000)


def _parquet_list(folder: Path) -> None:
    frame = pl.DataFrame({name: [value] for name, value in zip(HEADER.split(","),
                                                               GOOD.split(","), strict=True)})
    frame.with_columns(pl.Series("Phenotypes", [["Seizure", "Ataxia"]])).write_parquet(
        folder / "m.parquet")


_MERGED_TRIO = [*_rows(), ["F1", "", "", "FASTQ", "S2", "", "mother", "F", "unaffected"]]
_DATES = _rows(("Date Of Birth", dt.date(2021, 3, 14)), ("Due Date", dt.datetime(2026, 1, 5)))

CASES: list[Hostile] = [
    Hostile("empty file", ("validate", "m.csv"), 2, "empty", csv_file("m.csv", "")),
    Hostile("missing Sex column", ("validate", "m.csv"), 2, "missing column",
            csv_file("m.csv", "Family Id,Case Type,Files Names\nF1,Exome,\n")),
    Hostile("bad sex value", ("validate", "m.csv"), 2, "Sex is not valid",
            csv_file("m.csv", HEADER + "\nF1,Exome,,FASTQ,S1,,proband,X,Seizure\n")),
    Hostile("xlsx date cells", ("validate", "m.xlsx"), 0, "1 family, 0 errors",
            _workbook({"Cases": _DATES})),
    Hostile("xlsx with a Notes sheet first", ("validate", "m.xlsx"), 0, "1 family, 0 errors",
            _workbook({"Notes": NOTES, "Cases": _rows()})),
    Hostile("xlsx unknown --sheet", ("validate", "m.xlsx", "--sheet", "Nope"), 2,
            "no sheet named 'Nope'; its sheets: 'Notes', 'Cases'",
            _workbook({"Notes": NOTES, "Cases": _rows()})),
    Hostile("--sheet on a CSV", ("validate", "m.csv", "--sheet", "Cases"), 2,
            "--sheet is for workbooks (XLSX, XLS, ODS)", csv_file("m.csv", f"{HEADER}\n{GOOD}\n")),
    Hostile("xlsx merged Family Id with --skip-invalid", ("run", "m.xlsx", "--sandbox",
            "--skip-invalid"), 2, "m.xlsx[Cases]:2: Family Id: cells A2:A3 are merged",
            _workbook({"Cases": _MERGED_TRIO}, {"Cases": [("A2:A3", "F1")]})),
    Hostile("xlsx zip bomb", ("validate", "m.xlsx"), 2, "unpacks to 3.0 MB, more than the 1.0 MB",
            _bomb, env={"EMG_XLSX_MAX_MB": "1"}),
    Hostile("parquet list column", ("validate", "m.parquet"), 2,
            "Phenotypes: the column holds lists (List(String)): text, number, boolean or date"
            " expected", _parquet_list),
    Hostile("10 MB cell", ("validate", "m.csv"), 2, "(10,485,760 characters)",
            csv_file("m.csv", f"{HEADER}\n" + GOOD.replace(",M,", "," + "M" * 10_485_760 + ",")
                     + "\n")),
    Hostile("Relation Proband", ("validate", "m.csv"), 2,
            "Relation Proband is not valid: relations are lower case",
            csv_file("m.csv", f"{HEADER}\n" + GOOD.replace("proband", "Proband") + "\n")),
    Hostile("NUL byte in a cell", ("validate", "m.csv"), 2,
            "m.csv:2: Phenotypes = 'Sei\\x00zure': the cell holds the control character U+0000",
            csv_file("m.csv", f"{HEADER}\n" + GOOD.replace("Seizure", "Sei\x00zure") + "\n")),
    Hostile("duplicated BioSample Name column", ("validate", "m.csv"), 0,
            "the rightmost one (column J) is used",
            csv_file("m.csv", f"{HEADER},BioSample Name\n{GOOD},S1\n")),
    Hostile("duplicated BioSample Name column in run", ("run", "m.csv", "--sandbox"), 0,
            "2 warnings:\nm.csv:1: warning: no \"[Data]\" row: the first row is read as the "
            "header\nm.csv:1: BioSample Name: warning: the column appears 2 times",
            csv_file("m.csv", f"{HEADER},BioSample Name\n{GOOD},S1\n")),
]
