"""Messages about a manifest: values cut to a readable length, one message per bad relation,
control characters refused where they are, duplicated columns named with the one used."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from batch.errors import ManifestError
from batch.manifest import OFFICIAL_COLUMNS, Manifest, Problem, read_manifest
from batch.payload import build_payload, check_family
from batch.text import quoted
from tests.hostile import Hostile, run_case
from tests.resolver_fake import FixtureResolver
from tests.workbooks import write_workbook

HEADER = ",".join(OFFICIAL_COLUMNS)
ROW = "F1,Exome,/a/S1.vcf,,S1,,461,,,proband,M,unaffected"
BIG = 10 * 1024 * 1024


def _csv(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "m.csv"
    path.write_text("[Data]\n" + header + "\n" + "".join(row + "\n" for row in rows),
                    encoding="utf-8")
    return path


def _errors(manifest: Manifest) -> list[Problem]:
    found: list[Problem] = []
    for family in manifest.families():
        found += asyncio.run(check_family(family, FixtureResolver(), file=manifest.source))
    return [p for p in found if p.severity == "error"]


# --------------------------------------------------------------------------- long values


def test_quoted_values_are_cut_with_their_length() -> None:
    assert quoted("short") == "'short'"
    assert quoted("A" * BIG) == "'" + "A" * 100 + "…' (10,485,760 characters)"


def test_a_huge_cell_is_cut_in_every_part_of_a_problem() -> None:
    huge = "x " * (BIG // 2)
    problem = Problem(file="m.csv", row=3, family="F" * BIG, column="BioSample Name", value=huge,
                      message=f"BioSample Name {huge} is not valid - contains space", hint="h")
    text = str(problem)
    assert len(text) < 700
    assert text.count("(10,485,760 characters)") == 3  # family, value, value in the message
    assert text.endswith("is not valid - contains space (h)")
    assert problem.message.startswith("BioSample Name x x")  # the data itself is intact


@pytest.mark.slow
def test_a_10_mb_cell_gives_a_short_error_on_the_command_line(tmp_path: Path) -> None:
    row = "F1,Exome,,FASTQ,S1,,,,,proband," + "M" * BIG + ",Seizure"
    _csv(tmp_path, row)
    outcome = run_case(Hostile("huge", ("validate", "m.csv"), 2, "characters"), tmp_path)
    assert outcome.code == 2
    assert "Sex = 'MMMM" in outcome.stderr and "(10,485,760 characters)" in outcome.stderr
    assert len(outcome.stdout) + len(outcome.stderr) < 2_000


# --------------------------------------------------------------------------- relations


@pytest.mark.parametrize(
    ("relation", "message"),
    [
        ("Proband", "Relation Proband is not valid: relations are lower case: proband, mother,"
                    " father, sibling"),
        ('" proband "', "Relation ' proband ' is not valid: remove the spaces around it"),
        ("cousin", "Relation cousin is not valid"),
    ],
)
def test_a_bad_relation_gets_one_message(tmp_path: Path, relation: str, message: str) -> None:
    row = ROW.replace(",proband,", f",{relation},")
    (error,) = _errors(read_manifest(_csv(tmp_path, row)))
    assert (error.row, error.column, error.message) == (3, "Relation", message)


def test_the_same_rows_are_flagged_as_by_the_official_cli(tmp_path: Path) -> None:
    """A family whose only proband is ``Proband``: its other rows still need a proband."""
    rows = [ROW.replace(",proband,", ",Proband,"),
            "F1,,/a/S2.vcf,,S2,,461,,,mother,F,unaffected",
            "F1,,/a/S3.vcf,,S3,,461,,,Mother,M,unaffected"]
    errors = _errors(read_manifest(_csv(tmp_path, *rows)))
    assert [(p.row, p.message.split(":")[0]) for p in errors] == [
        (3, "Relation Proband is not valid"),
        (4, "Relation proband is required"),
        (5, "Relation Mother is not valid"),
    ]


def test_accepted_relations_are_the_official_ones(tmp_path: Path) -> None:
    rows = [ROW.replace(",proband,", ",,"), "F1,,/a/S2.vcf,,S2,,461,,,mother,F,unaffected",
            "F1,,/a/S3.vcf,,S3,,461,,,father,M,unaffected",
            "F1,,/a/S4.vcf,,S4,,461,,,sibling,M,unaffected"]
    manifest = read_manifest(_csv(tmp_path, *rows))
    assert _errors(manifest) == []
    (family,) = manifest.families()
    payload = asyncio.run(build_payload(family, FixtureResolver()))
    assert set(payload["test_data"]["patients"]) == {"proband", "mother", "father", "other"}


# --------------------------------------------------------------------------- control characters


@pytest.mark.parametrize(("char", "code"), [("\x00", "U+0000"), ("\x1b", "U+001B"),
                                            ("\x7f", "U+007F"), ("\x1f", "U+001F")])
def test_control_characters_are_refused_naming_row_and_column(
    tmp_path: Path, char: str, code: str
) -> None:
    path = _csv(tmp_path, ROW, ROW.replace("S1", "S2").replace("M,unaffected", f"M,un{char}x"))
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    assert str(caught.value) == (
        f"m.csv:4: Phenotypes = {quoted(f'un{char}x')}: the cell holds the control character"
        f" {code} (remove it: cells may hold tabs and line breaks, no other control characters)")


def test_tabs_and_line_breaks_are_cells_as_usual(tmp_path: Path) -> None:
    notes = '"a\tb\r\nc"'
    path = _csv(tmp_path, ROW + ",,,,,,,,," + notes)
    assert read_manifest(path).family("F1").rows[0].cells["Clinical Notes"] == "a\tb\r\nc"


def test_a_control_character_in_the_header_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"m\.csv:2: header cell 24 = 'Lab\\x00': the cell"):
        read_manifest(_csv(tmp_path, ROW, header=HEADER + ",Lab\x00"))


def test_a_control_character_in_a_workbook_names_the_sheet(tmp_path: Path) -> None:
    header = list(OFFICIAL_COLUMNS)
    row = ["F1", "Exome", "/a/S1.vcf", None, "S\x00 1"]
    path = write_workbook(tmp_path / "m.xlsx", {"Notes": [["read me"]], "Cases": [header, row]})
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    assert str(caught.value).startswith(
        "m.xlsx[Cases]:2: BioSample Name = 'S\\x00 1': the cell holds the control character")


# --------------------------------------------------------------------------- duplicated columns


def test_a_duplicated_column_is_a_warning_naming_the_one_used(tmp_path: Path) -> None:
    """The official CLI accepts it (the rightmost wins, v036); payloads stay identical."""
    header = HEADER + ",BioSample Name,BioSample Name"
    manifest = read_manifest(_csv(tmp_path, ROW + ",,,,,,,,,,,,S9,S1", header=header))
    (warning,) = [w for w in manifest.warnings if w.column == "BioSample Name"]
    assert str(warning) == (
        "m.csv:2: BioSample Name: warning: the column appears 3 times (column E, column X,"
        " column Y); the rightmost one (column Y) is used, as the official CLI does")
    assert manifest.family("F1").proband_sample == "S1"
    assert _errors(manifest) == []
