"""Outputs for people: results CSV, review workbook, exports, status and templates."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest

from batch import outputs
from batch.errors import ManifestError
from batch.ledger import Ledger, Outcome, State
from batch.manifest import Manifest, read_manifest
from batch.outputs import workbook
from tests import ledgers

# A tenant's address as the ledger records it; never contacted (``.invalid`` never resolves).
HOST = "https://lab.emg.invalid"
FORMULAS = ('=HYPERLINK("http://127.0.0.1/x")', "+1", "-2", "@SUM(A1)")
HEADER = ("Family Id,Case Type,Files Names,BioSample Name,Storage Provider Id,Relation,Sex,"
          "Phenotypes Id,Lab Code,Clinical Notes")
MANIFEST = "[Data]\n" + HEADER + """
F1,Whole Genome,s3://b/a.fastq.gz,S1,900,proband,male,HP:0001250,"=HYPERLINK(""http://127.0.0.1/x"")",+1
F1,,s3://b/b.fastq.gz,S2,900,mother,female,HP:0001250,-2,@SUM(A1)
F2,Whole Genome,s3://b/c.fastq.gz,S3,900,proband,male,HP:0001250,ok,"note, with comma"
F3,Whole Genome,s3://b/d.fastq.gz,S4,900,proband,male,HP:0001250,ok,note
F4,Whole Genome,s3://b/e.fastq.gz,S5,900,,male,HP:0001250,ok,note
F5,Whole Genome,s3://b/f.fastq.gz,S6,900,proband,male,HP:0001250,ok,note
F6,Whole Genome,s3://b/g.fastq.gz,S7,900,proband,male,HP:0001250,ok,note
"""


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    """An official CSV with formula-looking custom fields and notes."""
    path = tmp_path / "batch.csv"
    path.write_text(MANIFEST, encoding="utf-8")
    return read_manifest(path)


def _store_rows(ledger: Ledger, manifest: Manifest, fid: str) -> None:
    """Keep a family's rows in the ledger, as the run engine does when it fails."""
    rows = [{"number": r.number, "cells": dict(r.cells)} for r in manifest.family(fid).rows]
    ledger.update_family(fid, rows=json.dumps(rows))


@pytest.fixture
def ledger(tmp_path: Path, manifest: Manifest) -> Iterator[Ledger]:
    """F1 create failed, F2 created then assign failed, F3 unknown, F4 not in the ledger,
    F5 done, F6 pending."""
    opened = Ledger.open(tmp_path / "batch.ledger.sqlite")
    steps = {"F1": ("create", "assign"), "F2": ("create", "assign"), "F3": ("create",),
             "F5": ("create", "set_status"), "F6": ("create",)}
    opened.add_families(
        ledgers.family(f.family_id, seq, sample=f.proband_sample, row_hash=f.row_hash,
                       steps=steps[f.family_id])
        for seq, f in enumerate(manifest.families()) if f.family_id in steps
    )
    run = opened.begin_run("run", manifest_path=str(manifest.path), host=HOST,
                           options={"concurrency": 8, "max_failures": None})
    opened.set_step("F1", "create", State.SENDING, attempt=True, run_id=run)
    opened.set_step("F1", "create", State.FAILED, http_status=400, error_class="PermanentError",
                    error_message="Case Type is required", run_id=run)
    _store_rows(opened, manifest, "F1")
    opened.set_step("F2", "create", State.SUCCEEDED, attempt=True, http_status=201,
                    case_name="EMG000000002", run_id=run)
    opened.update_family("F2", case_name="EMG000000002")
    opened.set_step("F2", "assign", State.FAILED, attempt=True, http_status=404,
                    error_class="NotFound", error_message="no such user", run_id=run)
    _store_rows(opened, manifest, "F2")
    opened.set_step("F3", "create", State.UNKNOWN, attempt=True, error_class="AmbiguousCreate",
                    error_message="no answer in 30 s", run_id=run)
    opened.set_step("F5", "create", State.SUCCEEDED, attempt=True, http_status=201,
                    case_name="EMG000000005", run_id=run)
    opened.update_family("F5", case_name="EMG000000005")
    opened.set_step("F5", "set_status", State.SUCCEEDED, attempt=True, http_status=200,
                    case_name="EMG000000005", run_id=run)
    opened.end_run(run, exit_code=1, counts={"families": 6, "created": 2, "failed": 2,
                                             "unknown": 1, "elapsed": 1.5,
                                             "plan": {"create": 5}})
    yield opened
    opened.close()


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _sheet(book: Any, name: str) -> list[list[Any]]:
    return [[c.value for c in row] for row in book[name].iter_rows()]


def _no_formulas(book: Any) -> None:
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    assert cell.data_type == "s"


# --------------------------------------------------------------------------- small parts


def test_case_url() -> None:
    assert outputs.case_url(HOST, "EMG1") == f"{HOST}/case/EMG1"
    assert outputs.case_url(HOST + "/", "EMG1") == f"{HOST}/case/EMG1"


def test_problem_messages(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as led:
        led.add_families([ledgers.family("A", 0), ledgers.family("B", 1),
                          ledgers.family("C", 2, steps=("create", "preset_group"))])
        led.set_step("A", "create", State.SENDING, attempt=True)
        led.set_step("B", "create", State.FAILED, error_class="BuildError")
        led.set_step("C", "create", State.SUCCEEDED, case_name="EMG3")
        led.set_step("C", "preset_group", State.UNKNOWN, error_class="Unknown",
                     error_message="cancelled")
        records = led.snapshot()
    assert outputs.problem_message(records["A"]) == (
        "the outcome of the case creation is unknown (interrupted while the request was in "
        "flight): the case may exist; rerun to look it up")
    assert outputs.problem_message(records["B"]) == (
        "the case could not be built from its rows; nothing was sent")
    assert outputs.problem_message(records["C"]) == (
        "the outcome of the preset group is unknown (cancelled): the group may have been "
        "added; rerun to check")


# --------------------------------------------------------------------------- results CSV


def test_results_csv(ledger: Ledger, manifest: Manifest, tmp_path: Path) -> None:
    out = outputs.write_results(ledger, manifest, tmp_path)
    assert out == tmp_path / "batch_results.csv"
    rows = _rows(out)
    assert rows[0][0] == "[Data]"
    assert rows[1][:3] == ["Errors", "Case Id", "Family Id"]
    by_line = {i + 1: r for i, r in enumerate(rows)}
    assert by_line[3][:3] == [
        "the server refused the case creation: Case Type is required (HTTP 400)", "", "F1"]
    assert by_line[3][-2:] == [FORMULAS[0], FORMULAS[1]]  # verbatim, no quote prefix
    assert by_line[4][:3] == ["", "", "F1"]
    assert by_line[4][-2:] == [FORMULAS[2], FORMULAS[3]]
    assert by_line[5][:3] == ["the server refused the assignment: no such user (HTTP 404)",
                              "EMG000000002", "F2"]
    assert by_line[6][:3] == [
        "the outcome of the case creation is unknown (no answer in 30 s): the case may exist; "
        "rerun to look it up", "", "F3"]
    assert by_line[7][:3] == ["", "", "F4"]  # not attempted: nothing
    assert by_line[8][:3] == ["", "EMG000000005", "F5"]
    assert by_line[9][:3] == ["", "", "F6"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_results_keep_existing_case_ids(tmp_path: Path) -> None:
    path = tmp_path / "upd.csv"
    path.write_text("Case Id,Family Id,Case Type,Files Names,BioSample Name,Sex,Phenotypes Id\n"
                    "EMG9,F9,Whole Genome,s3://b/a.fastq.gz,S9,male,HP:0001250\n"
                    ",F8,Whole Genome,s3://b/b.fastq.gz,S8,male,HP:0001250\n", encoding="utf-8")
    parsed = read_manifest(path)
    with Ledger.open(tmp_path / "l.sqlite") as led:
        out = outputs.write_results(led, parsed, tmp_path / "out.csv")
    rows = _rows(out)
    assert rows[0][0] == "Case Id"
    assert [r[0] for r in rows[1:]] == ["EMG9", ""]


# --------------------------------------------------------------------------- review workbook


def _pairs(book: Any) -> dict[str, Any]:
    """The Summary's label: value rows (column A: column B)."""
    return {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if r[0]}


def test_review_workbook(ledger: Ledger, manifest: Manifest, tmp_path: Path) -> None:
    summary = {"families": 6, "created": 2, "failed": 2, "unknown": 1, "elapsed": 1.5,
               "updated": 1, "actions": {"assign": 1}, "dry_run": False, "exit_code": 1,
               "problems": ["batch.csv:9: a warning"]}
    out = outputs.write_review(ledger, manifest, tmp_path, summary=summary)
    assert out == tmp_path / "batch_review.xlsx"
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Summary", "Failed", "Unknown", "Not attempted", "Cases",
                               "Problems"]
    _no_formulas(book)
    for ws in book.worksheets:
        assert ws.page_setup.fitToWidth in (None, 1), ws.title  # 1 is the default
        assert ws.page_setup.fitToHeight == 0, ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        if ws.title == "Summary":
            continue
        assert ws.freeze_panes == "A2", ws.title
        assert ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:"), ws.title
        widths = [d.width for d in ws.column_dimensions.values()]
        assert widths and all(0 < w <= 121 for w in widths), ws.title
    assert book["Summary"].page_setup.orientation == "landscape"
    assert book["Cases"].page_setup.orientation == "landscape"

    ws = book["Summary"]
    assert ws["A1"].value == ("1 of 6 families is done; 5 need action: 2 failed, 1 with an "
                              "unknown outcome, 2 not attempted (listed below). This run "
                              "created 2 cases.")
    assert [c.value for c in ws[4]] == ["Family Id", "Where", "Problem", "What To Do"]
    actions = [[c.value for c in row] for row in ws.iter_rows(min_row=5, max_row=8)]
    assert actions == [
        ["F1", "Failed, row 2",
         "the server refused the case creation: Case Type is required (HTTP 400)",
         "Fix the family's rows as the server's answer says, then rerun the same command."],
        ["F2", "Failed, row 4", "the server refused the assignment: no such user (HTTP 404)",
         "Fix the family's rows as the server's answer says, then rerun the same command."],
        ["F3", "Unknown, row 2", "no answer in 30 s", outputs.review.UNKNOWN_ADVICE["create"]],
        ["2 families", "Not attempted", "not attempted (the run stopped first, or they were "
         "left out as invalid)", "Rerun the same command."]]
    assert ws["B5"].hyperlink.location == "'Failed'!A2"
    assert ws["B7"].hyperlink.location == "'Unknown'!A2"
    assert _sheet(book, "Failed")[3][2] == "F2"  # row 4, where the link points

    pairs = _pairs(book)
    assert (pairs["Done"], pairs["Failed"], pairs["Outcome unknown"],
            pairs["Not attempted"], pairs["Families in all"]) == (1, 2, 1, 2, 6)
    assert pairs["Cases created"] == 2 and pairs["Elapsed"] == "1.5 s"
    assert pairs["Cases updated"] == 1
    assert [c.value for c in ws[pairs_row(ws, "Cases updated")]][2] == "1 assignment"
    assert isinstance(pairs["Started"], datetime)
    assert pairs["Host"] == HOST and pairs["Manifest"] == str(manifest.path)
    assert pairs["Ledger"] == str(ledger.path)
    for jargon in ("Plan: create", "Exit code", "Stopped", "Option: concurrency",
                   "Ledger: families", "Dry run"):
        assert jargon not in pairs
    assert _sheet(book, "Problems")[1] == ["batch.csv:9: a warning"]


def pairs_row(ws: Any, label: str) -> int:
    """The row (1-based) whose column A is *label*."""
    return next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == label)


def test_empty_sheets_are_left_out(tmp_path: Path, manifest: Manifest) -> None:
    with Ledger.open(tmp_path / "all.sqlite") as led:
        led.add_families(ledgers.family(f.family_id, seq, sample=f.proband_sample)
                         for seq, f in enumerate(manifest.families()))
        for fid in manifest.family_ids:
            led.set_step(fid, "create", State.SUCCEEDED, http_status=201, case_name=f"C-{fid}")
        book = openpyxl.load_workbook(outputs.write_review(led, manifest, tmp_path / "r.xlsx"))
    assert book.sheetnames == ["Summary", "Cases"]
    assert book["Summary"]["A1"].value == "All 6 families are done."
    assert "Needs action" not in _pairs(book)


def test_cases_sheet(ledger: Ledger, manifest: Manifest, tmp_path: Path) -> None:
    book = openpyxl.load_workbook(outputs.write_review(ledger, manifest, tmp_path / "r.xlsx"))
    ws = book["Cases"]
    rows = _sheet(book, "Cases")
    assert rows[0] == ["Family Id", "Proband BioSample", "Case", "Create", "Assign",
                       "Preset Group", "Set Status", "Revert", "Attempts", "Last Error",
                       "HTTP Status", "Link", "Updated"]
    assert [r[0] for r in rows[1:]] == ["F1", "F2", "F3", "F5", "F6"]
    f2 = rows[2]
    assert f2[1:8] == ["S3", "EMG000000002", "succeeded", "failed", None, None, None]
    assert f2[8] == 2 and f2[10] == 404
    assert f2[9] == "the server refused the assignment: no such user (HTTP 404)"
    assert f2[11] == f"{HOST}/case/EMG000000002"
    assert ws.cell(row=3, column=12).hyperlink.target == f"{HOST}/case/EMG000000002"
    assert isinstance(f2[12], datetime)
    assert isinstance(rows[1][8], int) and isinstance(rows[1][10], int)
    fills = {r[0].value: r[0].fill.fgColor.rgb if r[0].fill.fill_type else None
             for r in ws.iter_rows(min_row=2)}
    assert fills == {"F1": "FFF8CBAD", "F2": "FFF8CBAD", "F3": "FFFFE699", "F5": None,
                     "F6": None}


def test_failed_sheet_runs_again(ledger: Ledger, manifest: Manifest, tmp_path: Path) -> None:
    out = outputs.write_review(ledger, manifest, tmp_path / "r.xlsx")
    rows = _sheet(openpyxl.load_workbook(out), "Failed")
    assert rows[0] == ["Errors", "Case Id", *manifest.columns]
    assert [r[2] for r in rows[1:]] == ["F1", "F1", "F2"]
    assert rows[1][-2:] == list(FORMULAS[:2]) and rows[2][-2:] == list(FORMULAS[2:])
    assert rows[3][1] == "EMG000000002"  # the case exists: a re-run must not create it again
    assert rows[1][0] == "the server refused the case creation: Case Type is required (HTTP 400)"

    # "Save as CSV" and run it again: the same families, the same cells
    frame = pl.read_excel(out, sheet_name="Failed", infer_schema_length=0)
    again = tmp_path / "fixed.csv"
    frame.write_csv(again)
    reread = read_manifest(again)
    assert reread.columns == ("Errors", "Case Id", *manifest.columns)
    assert [f.family_id for f in reread.families()] == ["F1", "F2"]
    for family in reread.families():
        original = manifest.family(family.family_id)
        assert family.row_hash == original.row_hash
    assert reread.family("F2").case_id == "EMG000000002"
    assert reread.family("F1").case_id is None


def test_failed_sheet_from_ledger_rows(ledger: Ledger, manifest: Manifest,
                                       tmp_path: Path) -> None:
    book = openpyxl.load_workbook(outputs.write_review(ledger, None, tmp_path))
    assert (tmp_path / "batch_review.xlsx").exists()
    rows = _sheet(book, "Failed")
    assert rows[0] == ["Errors", "Case Id", *manifest.columns]
    assert [r[2] for r in rows[1:]] == ["F1", "F1", "F2"]
    assert rows[2][-2:] == list(FORMULAS[2:])
    _no_formulas(book)
    # without the manifest, only the ledger's pending families are "not attempted"
    assert _sheet(book, "Not attempted")[1:] == [["F6", "S7", None, None, "pending"]]


def test_not_attempted_and_unknown_sheets(ledger: Ledger, manifest: Manifest,
                                          tmp_path: Path) -> None:
    book = openpyxl.load_workbook(outputs.write_review(ledger, manifest, tmp_path / "r.xlsx"))
    assert _sheet(book, "Not attempted")[1:] == [
        ["F4", "S5", 7, 1, outputs.NOT_IN_LEDGER],
        ["F6", "S7", 9, 1, "pending"],
    ]
    unknown = _sheet(book, "Unknown")
    assert unknown[0][:5] == ["Family Id", "Proband BioSample", "Case", "Step", "State"]
    assert unknown[1][:6] == ["F3", "S4", None, "create", "unknown", 1]
    assert isinstance(unknown[1][6], datetime)
    assert unknown[1][7] == "no answer in 30 s"
    assert unknown[1][8].startswith("Rerun the same command")


def test_pending_error_is_shown(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as led:
        led.add_families([ledgers.family("A", 0)])
        led.set_step("A", "create", State.SENDING, attempt=True)
        led.record_refused("A", "create", Outcome(kind="AuthError", message="token refused"))
        frame = outputs.cases_table(led)
    assert frame.row(0, named=True)["Last Error"] == (
        "the case creation was not sent (the server refused the credentials: token refused); "
        "rerun once that is fixed")


def test_links_beyond_excel_limit_are_text(ledger: Ledger, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workbook, "MAX_LINKS", 1)
    book = openpyxl.load_workbook(outputs.write_review(ledger, None, tmp_path / "r.xlsx",
                                                      host=HOST))
    ws = book["Cases"]
    links = [c.hyperlink for c in ws["L"][1:] if c.value]
    assert len(links) == 2 and links[0] is not None and links[1] is None


def test_workbook_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "keep.xlsx"
    out.write_bytes(b"old")

    def broken(book: Any, formats: workbook.Formats) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        workbook.write_workbook(out, broken)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.xlsx"]


# --------------------------------------------------------------------------- export


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Ledger]:
    """A ledger whose family ids and messages look like formulas."""
    opened = Ledger.open(tmp_path / "h.sqlite")
    opened.add_families([ledgers.family("=1+2", 0, sample="@S1"),
                         ledgers.family("F2", 1, sample="S2")])
    opened.set_step("=1+2", "create", State.FAILED, attempt=True, http_status=400,
                    error_class="PermanentError", error_message="-bad")
    opened.set_step("F2", "create", State.SUCCEEDED, attempt=True, http_status=201,
                    case_name="EMG2")
    opened.update_family("F2", case_name="EMG2")
    yield opened
    opened.close()


def test_export_csv_is_safe(hostile: Ledger, tmp_path: Path) -> None:
    out = outputs.export(hostile, tmp_path / "cases.csv", host=HOST)
    frame = pl.read_csv(out, infer_schema_length=0)
    assert frame.columns == [c.name for c in outputs.CASE_COLUMNS]
    first = frame.row(0, named=True)
    assert first["Family Id"] == "'=1+2" and first["Proband BioSample"] == "'@S1"
    assert first["Last Error"] == "the server refused the case creation: -bad (HTTP 400)"
    second = frame.row(1, named=True)
    assert second["Link"] == f"{HOST}/case/EMG2" and second["Attempts"] == "1"
    datetime.strptime(second["Updated"], "%Y-%m-%d %H:%M:%S")


def test_export_parquet_is_typed(hostile: Ledger, tmp_path: Path) -> None:
    out = outputs.export(hostile, tmp_path / "cases.parquet", host=HOST)
    frame = pl.read_parquet(out)
    assert frame.schema["Attempts"] == pl.Int64 and frame.schema["HTTP Status"] == pl.Int64
    assert frame.schema["Updated"] == pl.Datetime("us")
    assert frame["Family Id"].to_list() == ["=1+2", "F2"]  # values unchanged in Parquet
    assert frame["HTTP Status"].to_list() == [400, 201]
    assert frame["Create"].to_list() == ["failed", "succeeded"]
    assert frame["Assign"].to_list() == [None, None]


def test_export_xlsx_is_the_workbook(hostile: Ledger, tmp_path: Path) -> None:
    book = openpyxl.load_workbook(outputs.export(hostile, tmp_path / "all.xlsx", host=HOST))
    assert book.sheetnames == ["Summary", "Failed", "Cases"]
    assert book["Cases"]["A2"].value == "=1+2" and book["Cases"]["A2"].data_type == "s"
    # a failed family whose rows the ledger does not hold still has its line on Failed
    assert _sheet(book, "Failed") == [["Errors", "Family Id"],
                                      ["the server refused the case creation: -bad (HTTP 400)",
                                       "=1+2"]]
    assert book["Summary"]["A5"].value == "=1+2"
    _no_formulas(book)


def test_export_rejects_other_suffixes(hostile: Ledger, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.xlsx, \.csv or \.parquet"):
        outputs.export(hostile, tmp_path / "cases.json")


# --------------------------------------------------------------------------- status


def test_status(ledger: Ledger) -> None:
    report = outputs.status_report(ledger)
    assert report["families"] == 5
    assert report["steps"] == {
        "create": {"pending": 1, "succeeded": 2, "failed": 1, "unknown": 1},
        "assign": {"pending": 1, "failed": 1},
        "set_status": {"succeeded": 1},
    }
    assert {(f["step"], f["state"], f["count"], f["example_family"])
            for f in report["failures"]} == {("create", "failed", 1, "F1"),
                                            ("assign", "failed", 1, "F2"),
                                            ("create", "unknown", 1, "F3")}
    run = report["last_run"]
    assert run["command"] == "run" and run["host"] == HOST and run["exit_code"] == 1
    assert run["options"] == {"concurrency": 8, "max_failures": None}
    datetime.fromisoformat(run["started"])
    json.dumps(report)  # --json needs no custom encoder
    text = outputs.render_status(report)
    assert "Families: 5" in text.splitlines()


def test_render_status_exact() -> None:
    report = {
        "families": 12,
        "steps": {"create": {"pending": 1, "succeeded": 9, "failed": 1, "unknown": 1},
                  "preset_group": {"succeeded": 8, "sending": 1}},
        "failures": [
            {"step": "create", "state": "failed", "error_class": "PermanentError",
             "message": "Case Type is required", "count": 1, "example_family": "F7"},
            {"step": "create", "state": "unknown", "error_class": None, "message": None,
             "count": 5, "example_family": "F9", "families": ["F9", "F10", "F11"]},
        ],
        "last_run": {"command": "run", "manifest": "/data/batch.csv", "host": HOST,
                     "options": {"max_failures": None, "concurrency": 8},
                     "started": "2025-01-02T03:04:05+00:00", "ended": None, "exit_code": None,
                     "counts": {"families": 12, "created": 9, "failed": 1, "skipped": 0}},
    }
    assert outputs.render_status(report).splitlines() == [
        "Families: 12",
        "Step          pending  sending  succeeded  failed  unknown",
        "create              1        0          9       1        1",
        "preset group        0        1          8       0        0",
        "Failures (most frequent first):",
        "  1 x the case creation failed: Case Type is required (family F7)",
        "  5 x the outcome of the case creation is unknown (no answer): the case may exist; "
        "rerun to look it up (families F9, F10, F11 and 2 more)",
        "Last run: run, exit code -",
        "  manifest: /data/batch.csv",
        f"  host: {HOST}",
        "  started: 2025-01-02T03:04:05+00:00",
        "  ended: not recorded (still running or killed)",
        "  options: concurrency=8, max_failures=None",
        "  counts: families 12, created 9, failed 1",
    ]


def test_render_status_empty(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "empty.sqlite") as led:
        report = outputs.status_report(led)
    assert report == {"families": 0, "server": None, "in_progress": None, "steps": {},
                      "failures": [], "last_run": None}
    assert outputs.render_status(report).splitlines() == [
        "Families: 0", "Steps: none recorded", "Failures: none", "Last run: none"]


# --------------------------------------------------------------------------- templates


def test_templates(tmp_path: Path) -> None:
    paths = outputs.write_template(tmp_path / "t")
    assert [p.name for p in paths] == ["batch_template.csv", "update_template.csv",
                                      "example_manifest.csv"]
    official = _rows(paths[0])
    assert official[0] == ["[Data]"] + [""] * 22
    assert tuple(official[1]) == outputs.OFFICIAL_TEMPLATE_COLUMNS
    assert len(official) == 2
    assert _rows(paths[1]) == [list(outputs.UPDATE_TEMPLATE_COLUMNS)]
    # header-only files are refused as they are, and accepted once a row is added
    with pytest.raises(ManifestError):
        read_manifest(paths[0])
    row = ["F1", "Whole Genome", "s3://b/a.fastq.gz", "", "S1"] + [""] * 18
    with paths[0].open("a", encoding="utf-8") as handle:
        handle.write(",".join(row) + "\n")
    assert [f.family_id for f in read_manifest(paths[0]).families()] == ["F1"]
    with paths[1].open("a", encoding="utf-8") as handle:
        handle.write("EMG123,a@example.org,,,\n")
    assert [f.case_id for f in read_manifest(paths[1]).families()] == ["EMG123"]


def test_failed_family_missing_from_manifest(ledger: Ledger, manifest: Manifest,
                                             tmp_path: Path) -> None:
    """A family the manifest no longer has is left out of every sheet, and counted."""
    ledger.add_families([ledgers.family("GONE", 99, sample="S99")])
    ledger.set_step("GONE", "create", State.FAILED, error_class="PermanentError",
                    error_message="x")
    cells = {"Family Id": "GONE", "Lab Code": "=1+1"}
    ledger.update_family("GONE", rows=json.dumps([{"number": 40, "cells": cells}]))
    book = openpyxl.load_workbook(outputs.write_review(ledger, manifest, tmp_path / "r.xlsx"))
    assert [r[2] for r in _sheet(book, "Failed")[1:]] == ["F1", "F1", "F2"]
    assert "GONE" not in [r[0] for r in _sheet(book, "Cases")]
    assert _pairs(book)["Families in all"] == 6
    assert _pairs(book)["Not in the manifest"].startswith("1 family of the ledger that the "
                                                          "manifest no longer has")
    # without the manifest, the ledger's rows show it
    book = openpyxl.load_workbook(outputs.write_review(ledger, None, tmp_path / "l.xlsx"))
    rows = _sheet(book, "Failed")
    gone = rows[-1]
    assert gone[0] == "the case creation failed: x"
    assert gone[rows[0].index("Family Id")] == "GONE"
    assert gone[rows[0].index("Lab Code")] == "=1+1"
    assert gone[rows[0].index("Case Type")] is None
    _no_formulas(book)


def test_outputs_are_private(ledger: Ledger, manifest: Manifest, tmp_path: Path) -> None:
    review_file = outputs.write_review(ledger, manifest, tmp_path / "r.xlsx")
    parquet = outputs.export(ledger, tmp_path / "c.parquet")
    assert review_file.stat().st_mode & 0o777 == 0o600
    assert parquet.stat().st_mode & 0o777 == 0o600
    template = outputs.write_template(tmp_path / "t")[0]
    assert template.stat().st_mode & 0o777 == 0o644
