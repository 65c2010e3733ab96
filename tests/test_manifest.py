"""Reading manifests: CSV dialect, sections, family order, results file, round trips."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch.manifest import (
    OFFICIAL_COLUMNS,
    Actions,
    Family,
    Problem,
    Row,
    read_manifest,
)
from batch.manifest.csv import csv_records
from batch.outputs import write_results_csv
from batch.payload import build_payload
from tests.resolver_fake import FixtureResolver

HEADER = ",".join(OFFICIAL_COLUMNS)


def _write(tmp_path: Path, text: str, name: str = "m.csv", *, bom: bool = False) -> Path:
    path = tmp_path / name
    data = text.encode("utf-8")
    path.write_bytes(b"\xef\xbb\xbf" + data if bom else data)
    return path


def _row(**cells: str) -> str:
    return ",".join(cells.get(name.replace(" ", "_"), "") for name in OFFICIAL_COLUMNS)


def test_tokenizer_quotes_commas_newlines_and_trimming() -> None:
    lines = ['a , "b, c" ,"  d  "\r\n', '"multi\n', 'line ""q""",x\n', "ragged\n"]
    records = list(csv_records(lines))
    assert records == [
        (1, ["a", "b, c", "  d  "]),
        (2, ['multi\nline "q"', "x"]),
        (4, ["ragged"]),
    ]


def test_crlf_bom_ragged_and_trailing_columns(tmp_path: Path) -> None:
    text = (
        "[Data],,,\r\n"
        f"{HEADER},,\r\n"
        f"{_row(Family_Id='F1', Case_Type='Exome', Sex='M', Phenotypes='unaffected')}\r\n"
        "F1,,,,S2,,,,,mother\r\n"
    )
    manifest = read_manifest(_write(tmp_path, text, bom=True))
    assert manifest.kind == "official-csv"
    assert any("byte-order mark" in w.message for w in manifest.warnings)
    family = manifest.family("F1")
    mother = family.rows[1]
    assert mother.cells["Relation"] == "mother"
    assert "Sex" not in mother.cells  # missing trailing cell: absent, not empty
    assert family.rows[0].cells["Clinical Notes"] == ""
    assert manifest.columns[-1] == ""  # trailing empty header cells are columns too
    assert [row.number for row in family.rows] == [3, 4]


def test_plain_csv_without_data_row(tmp_path: Path) -> None:
    text = f"{HEADER}\n{_row(Family_Id='F1', Sex='m')}\n"
    manifest = read_manifest(_write(tmp_path, text))
    assert manifest.kind == "csv"
    assert manifest.family("F1").rows[0].number == 2
    assert any("[Data]" in w.message for w in manifest.warnings)


def test_family_order_is_javascript_key_order(tmp_path: Path) -> None:
    ids = ["fam-z", "10", "2", "fam-a", "007", "1", "4294967295", "2"]
    body = "".join(_row(Family_Id=fid, Sex="m") + "\n" for fid in ids)
    manifest = read_manifest(_write(tmp_path, f"[Data]\n{HEADER}\n{body}"))
    assert [f.family_id for f in manifest.families()] == [
        "1",
        "2",
        "10",
        "fam-z",
        "fam-a",
        "007",
        "4294967295",
    ]
    assert len(manifest) == 7
    assert manifest.row_count == 8
    assert [r.number for r in manifest.family("2").rows] == [5, 10]


def test_data_ends_at_blank_row_or_section(tmp_path: Path) -> None:
    text = (
        f"[Header]\nx,y\n[Data]\n{HEADER}\n{_row(Family_Id='F1', Sex='m')}\n,,,\n"
        f"{_row(Family_Id='F2', Sex='m')}\n[Settings]\nk,v\n"
    )
    manifest = read_manifest(_write(tmp_path, text))
    assert manifest.family_ids == ["F1"]
    assert any("ignored" in w.message for w in manifest.warnings)
    out = write_results_csv(manifest, tmp_path / "r.csv", case_ids={"F1": "EMG1"}, errors={})
    lines = out.read_text().splitlines()
    assert lines[:3] == ["[Header]", "x,y", "[Data]"]
    assert lines[3].startswith("Case Id,Family Id,")
    assert lines[4].startswith("EMG1,F1,")
    assert lines[-2:] == ["[Settings]", "k,v"]


def test_results_errors_first_and_relation_default(tmp_path: Path) -> None:
    mother = _row(Family_Id="F1", Relation="mother", Clinical_Notes='"a, b"')
    text = f"[Data]\nErrors,Case Id,{HEADER}\nold,,{_row(Family_Id='F1', Sex='m')}\n,,{mother}\n"
    manifest = read_manifest(_write(tmp_path, text))
    out = write_results_csv(
        manifest, tmp_path / "r.csv", case_ids={}, errors={3: ["Sex is not valid", "x"]}
    )
    lines = out.read_text().splitlines()
    assert lines[1].startswith("Errors,Case Id,Family Id")
    assert lines[2].startswith("Sex is not valid;x,,F1,")
    assert ",proband," in lines[2]
    assert lines[3].startswith(",,F1,") and '"a, b"' in lines[3]
    assert not list(tmp_path.glob(".r.csv.*"))  # the temp file was renamed


# (An unquoted padded cell is trimmed on reading; the official writer does not quote it either.)
@pytest.mark.parametrize("awkward", ["a,b", 'say "hi"', "two\nlines", "a\rb"])
def test_results_file_reads_back_cell_for_cell(tmp_path: Path, awkward: str) -> None:
    """Every cell, quoted or not (a lone CR included), reads back as written."""
    quoted = '"' + awkward.replace('"', '""') + '"'
    path = _write(tmp_path, "Family Id,Case Type,Files Names,Sex,Relation,Lab\n"
                  f"F1,Exome,/a/x.vcf,F,,{quoted}\nF1,Exome,/a/y.vcf,F,mother,plain\n")
    manifest = read_manifest(path)
    (before,) = manifest.families()
    out = write_results_csv(manifest, tmp_path / "r.csv", case_ids={"F1": "EMG1"},
                            errors={before.rows[1].number: ["bad", "worse"]})
    back = read_manifest(out)
    (after,) = back.families()
    assert after.rows[0].cells == {**before.rows[0].cells, "Case Id": "EMG1",
                                   "Relation": "proband", "Errors": ""}
    assert after.rows[1].cells == {**before.rows[1].cells, "Case Id": "", "Errors": "bad;worse"}
    header = "Errors,Case Id,Family Id,Case Type,Files Names,Sex,Relation,Lab"
    assert out.read_text().splitlines()[0] == header


def test_results_file_fills_every_copy_of_a_duplicated_column(tmp_path: Path) -> None:
    """A repeated Relation column reads its rightmost cell; each copy gets the default."""
    path = _write(tmp_path, "Family Id,Case Type,Files Names,Sex,Relation,Relation\n"
                  "F1,Exome,/a/x.vcf,F,,\nF1,Exome,/a/y.vcf,F,,mother\n")
    out = write_results_csv(read_manifest(path), tmp_path / "r.csv", case_ids={"F1": "EMG1"},
                            errors={})
    assert out.read_text().splitlines() == [
        "Case Id,Family Id,Case Type,Files Names,Sex,Relation,Relation",
        "EMG1,F1,Exome,/a/x.vcf,F,proband,proband",
        ",F1,Exome,/a/y.vcf,F,mother,mother",
    ]


def test_actions_case_id_and_hash(tmp_path: Path) -> None:
    extra = "Case Id,Assign To,Set Status,Preset Group,Preset Gene Lists"
    text = (
        f"[Data]\n{HEADER},{extra}\n"
        f"{_row(Family_Id='F1', Sex='m')},EMG1,a@x.org; b@y.org,finalized,G,12:Epi;bad\n"
        f"{_row(Family_Id='F1', Relation='mother')},,,,,\n"
    )
    manifest = read_manifest(_write(tmp_path, text))
    family = manifest.family("F1")
    assert family.case_id == "EMG1" and family.is_update_only
    assert family.actions == Actions(("a@x.org", "b@y.org"), "finalized", "G", ((12, "Epi"),))
    assert family.actions.steps == ("assign", "preset_group", "set_status")
    changed = Family(
        "F1",
        (Row(3, {**family.rows[0].cells, "Case Id": "", "Errors": "e"}), family.rows[1]),
        family.columns,
    )
    assert changed.row_hash == family.row_hash
    assert Family("F1", family.rows[::-1]).row_hash != family.row_hash


def test_update_manifest_needs_only_case_ids(tmp_path: Path) -> None:
    text = "Case Id,Set Status\nEMG1,delivered\nEMG2,trash\n"
    manifest = read_manifest(_write(tmp_path, text))
    assert manifest.family_ids == ["EMG1", "EMG2"]
    assert all(f.is_update_only for f in manifest.families())
    assert manifest.family("EMG2").actions.set_status == "trash"


def test_problem_str() -> None:
    problem = Problem(file="m.csv", row=4, family="F1", column="Sex", value="X",
                      message="Sex is not valid", hint="M, F or U")
    assert str(problem) == "m.csv:4: family F1: Sex = 'X': Sex is not valid (M, F or U)"
    assert str(Problem(file="m.csv", message="bad")) == "m.csv: bad"


def test_xlsx_with_data_row_and_parquet_row_numbers(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            name: ["F1" if name == "Family Id" else "m" if name == "Sex" else ""]
            for name in OFFICIAL_COLUMNS
        }
    )
    frame.write_parquet(tmp_path / "m.parquet")
    parquet = read_manifest(tmp_path / "m.parquet")
    assert parquet.kind == "parquet" and parquet.family("F1").rows[0].number == 2
    frame.write_excel(tmp_path / "m.xlsx")
    xlsx = read_manifest(tmp_path / "m.xlsx")
    assert xlsx.family("F1").rows[0].number == 2
    assert xlsx.family("F1").rows[0].cells == parquet.family("F1").rows[0].cells


# --------------------------------------------------------------------------- round trips

_TEXT = st.text(
    alphabet=st.characters(
        min_codepoint=32, max_codepoint=0x2FFF, blacklist_categories=("Cs", "Zs", "Cc", "Zl", "Zp")
    )
    | st.sampled_from([",", '"', ";", " ", "\n", "é", "日"]),
    max_size=12,
).map(str.strip)
_NAME = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-_", min_size=1, max_size=8)


@st.composite
def _families(draw: st.DrawFn) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for number in range(draw(st.integers(1, 4))):
        fid = draw(st.sampled_from([str(number), f"fam-{number}", f"0{number}"]))
        members = draw(
            st.lists(st.sampled_from(["mother", "father", "sibling"]), max_size=3, unique=True)
        )
        for relation in ["", *members]:
            sample = draw(_NAME)
            vcf = draw(st.booleans())
            rows.append(
                {
                    "Family Id": fid,
                    "Case Type": draw(_TEXT) or "Exome",
                    "Files Names": f"/runs/{sample}/{sample}{'.vcf.gz' if vcf else '.fq.gz'}",
                    "BioSample Name": sample,
                    "Storage Provider Id": "461",
                    "Relation": relation,
                    "Sex": draw(st.sampled_from(["m", "F", "", "unknown"])),
                    "Phenotypes": draw(_TEXT),
                    "Phenotypes Id": draw(st.sampled_from(["", "HP:0001250", "HP:1;HP:2"])),
                    "Selected Preset": draw(_TEXT),
                    "Clinical Notes": draw(_TEXT),
                    "Label Id": draw(st.sampled_from(["", "1;2", " 3 "])).strip(),
                    "Lab Ref": draw(_TEXT),
                }
            )
    return rows


def _csv_cell(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\n') else cell


def _write_all(tmp_path: Path, rows: list[dict[str, str]]) -> list[Path]:
    columns = [*OFFICIAL_COLUMNS, "Lab Ref"]
    frame = pl.DataFrame({c: [row.get(c, "") for row in rows] for c in columns})
    csv_path = tmp_path / "m.csv"
    lines = ["[Data]" + "," * (len(columns) - 1), ",".join(columns)]
    lines += [",".join(_csv_cell(row.get(c, "")) for c in columns) for row in rows]
    csv_path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    frame.write_parquet(tmp_path / "m.parquet")
    frame.write_excel(tmp_path / "m.xlsx")
    return [csv_path, tmp_path / "m.parquet", tmp_path / "m.xlsx"]


def _summary(path: Path) -> list[tuple[str, list[dict[str, str]], dict[str, Any] | None]]:
    manifest = read_manifest(path)
    resolver = FixtureResolver()
    summary = []
    for family in manifest.families():
        payload = asyncio.run(build_payload(family, resolver)) if family.proband else None
        summary.append((family.family_id, [dict(r.cells) for r in family.rows], payload))
    return summary


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.slow
@given(rows=_families())
def test_csv_parquet_xlsx_round_trip(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    csv_path, parquet_path, xlsx_path = _write_all(tmp_path, rows)
    from_csv = _summary(csv_path)
    assert from_csv == _summary(parquet_path)
    assert from_csv == _summary(xlsx_path)
    assert sum(len(cells) for _, cells, _ in from_csv) == len(rows)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_non_ascii_survives(tmp_path: Path, encoding: str) -> None:
    text = f"[Data]\n{HEADER}\n{_row(Family_Id='Família 1', Clinical_Notes='日本語 é')}\n"
    path = tmp_path / "m.csv"
    path.write_text(text, encoding=encoding)
    row = read_manifest(path).family("Família 1").rows[0]
    assert row.cells["Clinical Notes"] == "日本語 é"


def test_xlsx_row_numbers_are_sheet_rows(tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "m.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    sheet.write_row(2, 0, list(OFFICIAL_COLUMNS))
    sheet.write_row(3, 0, ["F1", "Exome", "", "fastq", "S1"])
    sheet.write_number(3, 6, 461)
    book.close()
    manifest = read_manifest(path)
    row = manifest.family("F1").rows[0]
    assert row.number == 4
    assert row.cells["Storage Provider Id"] == "461"
    assert row.cells["Relation"] == ""  # a blank cell in a workbook is empty, not absent


_CELL = st.text(alphabet=st.sampled_from(list('ab ,";\n\r\té')), max_size=8)


@settings(max_examples=300, deadline=None)
@given(cells=st.lists(st.tuples(_CELL, st.booleans()), min_size=1, max_size=6))
def test_tokenizer_round_trip(cells: list[tuple[str, bool]]) -> None:
    """Quoted cells come back verbatim, bare cells trimmed; records survive line breaks."""
    encoded: list[str] = []
    expected: list[str] = []
    for text, force in cells:
        bare_ok = not any(c in text for c in ',"\n\r') and text.strip() == text
        if force or not bare_ok:
            encoded.append('"' + text.replace('"', '""') + '"')
            expected.append(text)
        else:
            encoded.append(text)
            expected.append(text.strip())
    record = ",".join(encoded)
    lines = (record + "\r\n").splitlines(keepends=True)
    assert list(csv_records(lines)) == [(1, expected)]


def test_huge_quoted_cell(tmp_path: Path) -> None:
    notes = "x, " * 70_000
    text = f"[Data]\n{HEADER}\n{_row(Family_Id='F1', Clinical_Notes=chr(34) + notes + chr(34))}\n"
    row = read_manifest(_write(tmp_path, text)).family("F1").rows[0]
    assert row.cells["Clinical Notes"] == notes
