"""Malformed manifests: each gives one clear message naming the file, none a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch.errors import ManifestError
from batch.manifest import OFFICIAL_COLUMNS, Problem, read_manifest
from batch.payload import BuildError, build_payload, check_family, check_manifest_wide
from tests.resolver_fake import FixtureResolver

HEADER = ",".join(OFFICIAL_COLUMNS)
ROW = "F1,Exome,/a/S1.vcf,,S1,,461,,,proband,M,unaffected" + "," * 11


def _text(name: str, text: str, encoding: str = "utf-8") -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(text.encode(encoding))
        return path

    return make


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(data)
        return path

    return make


def _parquet(frame: pl.DataFrame) -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        path = directory / "m.parquet"
        frame.write_parquet(path)
        return path

    return make


def _xlsx(rows: list[list[str]]) -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        path = directory / "m.xlsx"
        width = max((len(r) for r in rows), default=1)
        frame = pl.DataFrame(
            {f"c{i}": [r[i] if i < len(r) else None for r in rows] for i in range(width)},
            schema={f"c{i}": pl.String for i in range(width)},
        )
        frame.write_excel(path, include_header=False)
        return path

    return make


def _zip_named_csv(directory: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    path = directory / "m.csv"
    path.write_bytes(buffer.getvalue())
    return path


def _directory(directory: Path) -> Path:
    path = directory / "folder.csv"
    path.mkdir()
    return path


FILE_ERRORS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("empty file", _text("m.csv", ""), "empty"),
    ("missing file", lambda d: d / "nope.csv", "no such file"),
    ("a directory", _directory, "not a regular file"),
    ("only [Data]", _text("m.csv", "[Data]\n"), "no header"),
    ("[Data] and header only", _text("m.csv", f"[Data]\n{HEADER}\n"), "no data rows"),
    ("blank row after header", _text("m.csv", f"[Data]\n{HEADER}\n,,,\n{ROW}\n"), "no data rows"),
    ("header only, no [Data]", _text("m.csv", f"{HEADER}\n"), "no data rows"),
    ("sections without [Data]", _text("m.csv", "[Header]\na,b\n[Reads]\n1\n"), 'no "[Data]" row'),
    (
        "missing Family Id",
        _text("m.csv", f"[Data]\n{HEADER.replace('Family Id', 'Fam')}\n{ROW}\n"),
        "missing column: Family Id",
    ),
    (
        "missing Sex",
        _text("m.csv", f"[Data]\n{HEADER.replace(',Sex,', ',Sx,')}\n{ROW}\n"),
        "missing column: Sex",
    ),
    (
        "missing several",
        _text("m.csv", "[Data]\nFamily Id,Relation\nF1,proband\n"),
        "missing columns: Case Type;Files Names;Sex",
    ),
    (
        "lower-case header",
        _text("m.csv", f"[Data]\n{HEADER.lower()}\n{ROW}\n"),
        "case- and space-sensitive",
    ),
    (
        "tab-separated",
        _text("m.csv", "[Data]\n" + "\t".join(OFFICIAL_COLUMNS) + "\nF1\tE\n"),
        "tab-separated",
    ),
    (
        "semicolon-separated",
        _text("m.csv", "[Data]\n" + ";".join(OFFICIAL_COLUMNS) + "\nF1;E\n"),
        "semicolon-separated",
    ),
    (
        "latin-1 bytes",
        _text("m.csv", f"[Data]\n{HEADER}\nFamília,{ROW[3:]}\n", "latin-1"),
        "save it as UTF-8",
    ),
    ("UTF-16 from Excel", _text("m.csv", f"\ufeff[Data]\n{HEADER}\n{ROW}\n", "utf-16"), "UTF-16"),
    ("binary junk", _bytes("m.csv", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"), "not UTF-8"),
    ("workbook named .csv", _zip_named_csv, "zip archive"),
    ("unclosed quote", _text("m.csv", f'[Data]\n{HEADER}\nF1,"Exome\n'), "never closed"),
    (
        "quote inside a bare cell",
        _text("m.csv", f'[Data]\n{HEADER}\nF1,Ex"ome,x\n'),
        "quote inside a cell",
    ),
    (
        "text after closing quote",
        _text("m.csv", f'[Data]\n{HEADER}\nF1,"Exome"x,y\n'),
        "quote inside a cell",
    ),
    ("old .xls workbook", _bytes("m.xls", b"\xd0\xcf\x11\xe0"), ".xls"),
    ("corrupt parquet", _bytes("m.parquet", b"PAR1 not really"), "Parquet"),
    ("corrupt xlsx", _bytes("m.xlsx", b"PK\x03\x04 broken"), "XLSX"),
    (
        "parquet without rows",
        _parquet(pl.DataFrame(schema=dict.fromkeys(OFFICIAL_COLUMNS, pl.String))),
        "no data rows",
    ),
    ("parquet missing columns", _parquet(pl.DataFrame({"Family Id": ["F1"]})), "missing columns"),
    ("xlsx [Data] only", _xlsx([["[Data]"]]), "no header"),
    (
        "control character",
        _text("m.csv", f"[Data]\n{HEADER}\nF\x1f1,{ROW[3:]}\n"),
        "control character",
    ),
    (
        "update manifest with a row lacking Case Id",
        _text("m.csv", "Case Id,Set Status\nEMG1,delivered\n,trash\n"),
        "missing columns",
    ),
]


@pytest.mark.parametrize(
    ("make", "expected"),
    [(m, e) for _, m, e in FILE_ERRORS],
    ids=[name for name, _, _ in FILE_ERRORS],
)
def test_file_level_errors(tmp_path: Path, make: Callable[[Path], Path], expected: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    message = str(caught.value)
    assert expected.lower() in message.lower(), message
    assert message.startswith(path.name)
    assert "\n" not in message and "Traceback" not in message
    assert all(isinstance(problem, Problem) for problem in caught.value.problems)


ROW_ERRORS: list[tuple[str, str, str]] = [
    ("empty Family Id", ",Exome,/a/S1.vcf,,S1,,461,,,proband,M,unaffected", "Family Id is"),
    (
        "bad relation",
        "F1,Exome,/a/S1.vcf,,S1,,461,,,Proband,M,unaffected",
        "Relation Proband is not valid: relations are lower case",
    ),
    (
        "storage not a number",
        "F1,Exome,/a/S1.vcf,,S1,,abc,,,proband,M,unaffected",
        "Storage Provider Id is not valid",
    ),
    (
        "unknown suffix",
        "F1,Exome,/a/S1.txt,,S1,,461,,,proband,M,unaffected",
        "Sample type in Files Names is not valid",
    ),
    ("no phenotypes", "F1,Exome,/a/S1.vcf,,S1,,461,,,proband,M,;", "One of Phenotypes"),
    (
        "bad date",
        "F1,Exome,/a/S1.vcf,,S1,,461,,,proband,M,unaffected,,2023-02-30",
        "Date Of Birth is not valid",
    ),
]


@pytest.mark.parametrize(
    ("row", "expected"), [(r, e) for _, r, e in ROW_ERRORS], ids=[name for name, _, _ in ROW_ERRORS]
)
async def test_row_level_errors(tmp_path: Path, row: str, expected: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text(f"[Data]\n{HEADER}\n{row}\n")
    manifest = read_manifest(path)
    problems = check_manifest_wide(manifest)
    for family in manifest.families():
        problems += await check_family(family, FixtureResolver(), file=path.name)
    errors = [p for p in problems if p.severity == "error"]
    assert errors and any(expected in p.message for p in errors), errors
    assert all(str(p).startswith("m.csv:3: family ") for p in errors)


async def test_year_zero_birth_date_is_valid_and_does_not_crash(tmp_path: Path) -> None:
    """0000-02-29 passes the official date rule; the future-date check must not choke on it."""
    path = tmp_path / "m.csv"
    path.write_text(f"[Data]\n{HEADER}\n"
                    "F1,Exome,/a/S1.vcf,,S1,,461,,,proband,M,unaffected,,0000-02-29\n")
    manifest = read_manifest(path)
    problems = check_manifest_wide(manifest)
    for family in manifest.families():
        problems += await check_family(family, FixtureResolver(), file=path.name)
    assert problems == []


_JUNK = st.text(alphabet=',"\n\r \tab;[]é\x00', max_size=120)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=_JUNK, official=st.booleans())
def test_fuzzed_csv_never_crashes(tmp_path: Path, body: str, official: bool) -> None:
    """Any text gives a manifest or a ManifestError; checks give problems, not exceptions."""
    path = tmp_path / "fuzz.csv"
    path.write_text(("[Data]\n" if official else "") + HEADER + "\n" + body, encoding="utf-8")
    try:
        manifest = read_manifest(path)
    except ManifestError as exc:
        assert str(exc).startswith("fuzz.csv")
        return
    check_manifest_wide(manifest)
    resolver = FixtureResolver()
    for family in manifest.families():
        problems = asyncio.run(check_family(family, resolver, file=path.name))
        if not any(p.severity == "error" for p in problems):
            with contextlib.suppress(BuildError):
                asyncio.run(build_payload(family, resolver))
