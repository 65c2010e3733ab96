"""Hidden data is not what a user meant to send: a hidden sheet is read only when --sheet names
it, and hidden (or filtered-out) rows are refused, named, unless --include-hidden-rows.

Real workbooks written by xlsxwriter; ``run`` against a sandbox thread on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batch.errors import ManifestError
from batch.manifest import read_manifest
from batch.sandbox import SandboxConfig, SandboxThread, demo_fixture_path
from tests.cli_sandbox import api_requests, invoke
from tests.manifests import HEADER, family_rows
from tests.workbooks import Cell, write_workbook


def rows(*families: str) -> list[list[Cell]]:
    """A header and three members per family (FASTQ on the demo fixture's storage)."""
    found: list[list[Cell]] = [list(HEADER)]
    for family in families:
        found += [[row.get(c, "") or None for c in HEADER] for row in family_rows(family)]
    return found


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path(), advance_after=0)) as running:
        yield running


def test_a_hidden_first_sheet_is_not_read(tmp_path: Path) -> None:
    """The hidden first sheet (an old one kept for reference) holds a manifest too: the visible
    one is read; --sheet reads the hidden one on purpose."""
    path = write_workbook(tmp_path / "m.xlsx", {"Old": rows("OLD1"), "Cases": rows("NEW1")},
                          hidden=["Old"])
    manifest = read_manifest(path)
    assert manifest.family_ids == ["NEW1"]
    assert read_manifest(path, sheet="Old").family_ids == ["OLD1"]
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr == "m.xlsx: 1 family, 0 errors, 0 warnings\n"


def test_a_visible_sheet_without_a_header_names_the_hidden_one(tmp_path: Path) -> None:
    """The only manifest is on a hidden sheet: refused, with the way to read it."""
    path = write_workbook(tmp_path / "m.xlsx", {"Old": rows("OLD1"), "Notes": [["notes"]]},
                          hidden=["Old"])
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    assert "'Old' (hidden), chosen with --sheet NAME" in str(caught.value.problems[0])


@pytest.mark.parametrize("filtered", [False, True], ids=["hidden", "filtered-out"])
def test_hidden_rows_are_refused_and_named_unless_asked(tmp_path: Path, sandbox: SandboxThread,
                                                        filtered: bool) -> None:
    """Rows hidden by hand or by a filter: validate and run refuse them (exit 2, nothing
    sent), naming the rows; --include-hidden-rows reads them, with a warning."""
    prefix = "HF" if filtered else "HH"
    sheet = rows(f"{prefix}1", f"{prefix}2")
    path = write_workbook(tmp_path / "m.xlsx", {"Cases": sheet}, hidden_rows={"Cases": [6, 7]},
                          filtered={"Cases": "A1:W7"} if filtered else None)
    refusal = [
        "Error: m.xlsx[Cases]:6: rows 6, 7 are hidden in the sheet (hidden or filtered out): "
        "hidden rows are not read as data unless asked (unhide or delete them and save, or "
        "pass --include-hidden-rows to send them)",
        "Hint: fix the manifest; nothing was sent",
    ]
    before = api_requests(sandbox)
    for command in ("validate", "run"):
        result = invoke(command, str(path), url=sandbox.url)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == refusal
    assert api_requests(sandbox) == before  # nothing was sent, not even a login
    warning = ("m.xlsx[Cases]:6: warning: rows 6, 7 are hidden in the sheet (hidden or "
               "filtered out); read as data (--include-hidden-rows)")
    result = invoke("validate", str(path), "--include-hidden-rows")
    assert result.exit_code == 0, result.output
    assert warning in result.stderr.splitlines()
    result = invoke("run", str(path), "--include-hidden-rows", url=sandbox.url)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[:2] == ["1 warning:", warning]
    assert result.stderr.splitlines()[2].startswith("done: 2 families: created 2,")


def test_hidden_blank_rows_and_rows_above_the_header_are_harmless(tmp_path: Path) -> None:
    """Hidden rows that hold nothing to send (the ``[Data]`` row above the header, a blank
    row under the data)."""
    sheet: list[list[Cell]] = [["[Data]"], *rows("B1"), []]
    path = write_workbook(tmp_path / "m.xlsx", {"Cases": sheet}, hidden_rows={"Cases": [1, 6]})
    assert read_manifest(path).family_ids == ["B1"]
    assert read_manifest(path).warnings == []
