"""``run`` shows the warnings ``validate`` gives: a count and the first 5. A duplicated official
column is what the official CLI accepts (BEHAVIOUR.md: "When two columns have the same
(trimmed) name, the rightmost one wins", ``v036``): a warning in both commands, and the
payloads sent are those of the manifest without the column on the left."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import openpyxl
from click.testing import CliRunner, Result

from batch.cli import main
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    SandboxThread,
    demo_fixture_path,
)
from tests.manifests import write_manifest

DUPLICATED = ("m.csv:2: BioSample Name: warning: the column appears 2 times (column E, column "
              "X); the rightmost one (column X) is used, as the official CLI does")
CREATE = "/api/cases/v2/cases"


def invoke(*args: str, url: str | None = None) -> Result:
    env = {"EMG_USERNAME": DEFAULT_USER, "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": "",
           "EMG_HOST": url or ""}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def summary_start(stderr: str) -> int:
    return next(i for i, line in enumerate(stderr.splitlines()) if line.startswith("done: "))


def with_columns(source: Path, target: Path, extra: dict[str, str],
                 stale: str | None = None) -> Path:
    """*source* with columns added at the right (values per row from *extra*, a template with
    ``{sample}``); with *stale*, the BioSample Name column on the left holds stale names."""
    with source.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    data, header, body = rows[0], rows[1], rows[2:]
    at = header.index("BioSample Name")
    out = [data + [""] * len(extra), header + list(extra)]
    for row in body:
        sample = row[at]
        if stale is not None:
            row = [*row[:at], f"{stale}{sample}", *row[at + 1:]]
        out.append(row + [value.format(sample=sample) for value in extra.values()])
    with target.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(out)
    return target


def creates(record: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    return [line["body"] for line in lines
            if line["method"] == "POST" and line["path"].rstrip("/") == CREATE]


def run_recorded(manifest: Path, record: Path) -> tuple[Result, list[dict[str, object]]]:
    config = SandboxConfig(fixture=demo_fixture_path(), advance_after=0, record=record)
    with SandboxThread(config) as sandbox:
        result = invoke("run", str(manifest), url=sandbox.url)
    return result, creates(record)


def test_a_duplicated_official_column_is_a_warning_and_the_payloads_are_the_same(
        tmp_path: Path) -> None:
    plain = write_manifest(tmp_path / "plain.csv", 2, prefix="DUP")
    (tmp_path / "dup").mkdir()
    doubled = with_columns(plain, tmp_path / "dup" / "m.csv", {"BioSample Name": "{sample}"},
                           stale="STALE-")

    checked = invoke("validate", str(doubled))
    assert checked.exit_code == 0
    assert checked.stderr.splitlines() == [DUPLICATED, "m.csv: 2 families, 0 errors, 1 warning"]

    ran, sent = run_recorded(doubled, tmp_path / "dup.jsonl")
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout == ""
    assert ran.stderr.splitlines()[:summary_start(ran.stderr)] == ["1 warning:", DUPLICATED]

    book = openpyxl.load_workbook(tmp_path / "dup" / "m_review.xlsx")
    assert [row[0] for row in book["Problems"].iter_rows(values_only=True)] == [
        "Problem", DUPLICATED]

    ran_plain, sent_plain = run_recorded(plain, tmp_path / "plain.jsonl")
    assert ran_plain.exit_code == 0
    assert "warning" not in ran_plain.stderr
    assert len(sent) == 2 and sent == sent_plain
    assert "STALE-" not in json.dumps(sent)


def test_run_shows_the_count_and_the_first_five(tmp_path: Path) -> None:
    plain = write_manifest(tmp_path / "plain.csv", 1, prefix="MANY")
    extra = {f"Note {n}": "x" for n in range(7)}
    header_extra = {**extra, **{f"Note {n} ": "y" for n in range(7)}}  # trimmed: duplicates
    manifest = with_columns(plain, tmp_path / "many.csv", header_extra)

    checked = invoke("validate", str(manifest))
    warnings = [line for line in checked.stderr.splitlines() if ": warning: " in line]
    assert len(warnings) == 7
    assert all(re.match(r"many\.csv:2: Note \d: warning: the column appears 2 times", w)
               for w in warnings)

    with SandboxThread(SandboxConfig(fixture=demo_fixture_path(), advance_after=0)) as sandbox:
        ran = invoke("run", str(manifest), url=sandbox.url)
        quiet = invoke("run", str(manifest), "-q", url=sandbox.url)
    assert ran.exit_code == 0, ran.stderr
    assert ran.stderr.splitlines()[:summary_start(ran.stderr)] == [
        "7 warnings, the first 5 (see `emg-batch validate` for all):", *warnings[:5]]
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")


def test_errors_are_all_shown_before_the_warnings(tmp_path: Path) -> None:
    plain = write_manifest(tmp_path / "plain.csv", 2, prefix="ERR")
    (tmp_path / "dup").mkdir()
    manifest = with_columns(plain, tmp_path / "dup" / "m.csv", {"BioSample Name": "{sample}"})
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(",M,", ",X,"),
                        encoding="utf-8")
    result = invoke("run", str(manifest), "--sandbox")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    errors = [line for line in lines if "Sex = 'X'" in line]
    assert len(errors) == 4
    assert lines[:7] == [*errors, "1 warning:", DUPLICATED,
                         "invalid: 2 of 2 families have errors; nothing was sent"]
