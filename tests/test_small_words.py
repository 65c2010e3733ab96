"""Small words that were wrong: help texts, warnings about the header, edited families named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from batch.cli import main
from batch.manifest import read_manifest
from batch.manifest.archive import column_letters
from batch.sandbox import SandboxThread
from tests.cli_sandbox import invoke
from tests.manifests import HEADER, write_manifest


def help_of(*command: str) -> str:
    return CliRunner().invoke(main, [*command, "--help"], catch_exceptions=False).output


def test_an_unbounded_number_shows_no_range() -> None:
    text = " ".join(help_of("sandbox").split())
    assert "Seed of every random choice. [default: 0]" in text and "None" not in text


@pytest.mark.parametrize("command", ["candidates", "info"])
def test_pull_tables_list_their_own_options_first(command: str) -> None:
    text = help_of("pull", command)
    options = re.findall(r"^\s+(--[a-z-]+|-[a-z], --[a-z]+)", text, re.M)
    assert options[:3] == ["--cases", "--ledger", "--out"]
    timeout = " ".join(text[text.index("--timeout"):].split())
    assert timeout.startswith("--timeout FLOAT Seconds one request may take, from sending to "
                              "the last byte of its answer (each retry gets as long again).")
    assert "report download" not in text


@pytest.mark.parametrize("command", [("template",), ("export",)])
def test_commands_that_write_files_say_so_for_quiet(command: tuple[str, ...]) -> None:
    text = " ".join(help_of(*command).split())
    assert "-q, --quiet Nothing on stderr but errors (the files are written all the same)." in text
    assert "data on stdout" not in text


def test_trailing_blank_columns_are_named_as_such(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m.csv", 1)
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(line + ",,," for line in lines) + "\n", encoding="utf-8")
    warnings = [str(p) for p in read_manifest(path).warnings]
    places = ", ".join(f"column {column_letters(len(HEADER) + i)}" for i in range(3))
    assert warnings == [f"m.csv:2: warning: 3 columns have no name ({places}): empty cells in "
                        "them are ignored; a value would be sent as a custom field with no name"]


def test_thousands_of_custom_columns_are_warned_about(tmp_path: Path) -> None:
    extra = {f"Field {i}": ["v"] for i in range(150)}
    manifest = read_manifest(write_manifest(tmp_path / "m.csv", 1, extra=extra))
    assert [str(p) for p in manifest.warnings] == [
        "m.csv:2: warning: 150 columns are custom fields: every family's case carries the "
        "proband's values of all of them (extra_data); more than 100 is unusual: check that the "
        "header row is the right one and that the file holds only the manifest's columns"]
    few = read_manifest(write_manifest(tmp_path / "f.csv", 1, extra={"Lab": ["x"]}))
    assert few.warnings == []


def test_edited_families_are_named(tmp_path: Path, delivering: SandboxThread) -> None:
    path = write_manifest(tmp_path / "m.csv", 3, prefix="ED")
    assert invoke("run", str(path), url=delivering.url).exit_code == 0
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("2020-01-02", "2020-01-03"), encoding="utf-8")  # every proband
    result = invoke("run", str(path), url=delivering.url)
    lines = result.stderr.splitlines()
    assert lines[0] == ("done: 3 families: created 0, adopted 0, updated 0, skipped 3, failed 0, "
                        "unknown 0, changed 3")
    assert lines[1] == ("changed: 3 families edited after their case was created, not "
                        "re-created (ED-000000, ED-000001, ED-000002; the review's Cases sheet "
                        "says which)")
