"""Links that stay true: a case links to the web app of a tenant; a sandbox on this computer
(loopback, gone after a ``--sandbox`` run, and without a web app) gets no link, and the review
workbook's Summary says why."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from click.testing import CliRunner

from batch import outputs
from batch.cli import main
from batch.ledger import Ledger, State
from batch.outputs.outcomes import links_to_cases
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER
from tests import ledgers
from tests.manifests import write_manifest

# A tenant's address as a ledger records it; never contacted (``.invalid`` never resolves).
TENANT = "https://lab.emg.invalid"
SANDBOX = "http://127.0.0.1:8765"
NOTE = (f"none: {SANDBOX} is a sandbox on this computer, with no web app to open cases in (a "
        "--sandbox run's sandbox is gone when the run ends); the Case column names each case")


@pytest.mark.parametrize(("host", "links"), [
    (TENANT, True), ("https://lab.emg.illumina.com/", True), ("lab.emg.invalid", True),
    ("https://10.1.2.3", True), (SANDBOX, False), ("https://127.9.9.9:443", False),
    ("http://localhost:8765", False), ("http://LOCALHOST", False), ("http://[::1]:8765", False),
    (None, False), ("", False),
])
def test_links_to_cases(host: str | None, links: bool) -> None:
    assert links_to_cases(host) is links


def ledger_with_cases(path: Path, host: str) -> Ledger:
    led = Ledger.open(path)
    led.add_families([ledgers.family("F1", 0), ledgers.family("F2", 1)])
    run = led.begin_run("run", host=host)
    for i, family in enumerate(("F1", "F2")):
        led.set_step(family, "create", State.SUCCEEDED, attempt=True, http_status=201,
                     case_name=f"EMG00000000{i + 1}", run_id=run)
    led.end_run(run, exit_code=0, counts={"families": 2, "created": 2})
    return led


def cases_and_summary(book_path: Path) -> tuple[list[tuple[object, object, object]],
                                                  dict[object, object]]:
    """(Case, Link value, hyperlink target) per row of Cases; the Summary's items."""
    book = openpyxl.load_workbook(book_path)
    sheet = book["Cases"]
    header = [c.value for c in sheet[1]]
    case, link = header.index("Case") + 1, header.index("Link") + 1
    rows = [(sheet.cell(r, case).value, sheet.cell(r, link).value,
             sheet.cell(r, link).hyperlink.target if sheet.cell(r, link).hyperlink else None)
            for r in range(2, sheet.max_row + 1)]
    summary = {row[0].value: row[1].value for row in book["Summary"].iter_rows(min_row=2)}
    return rows, summary


def test_a_tenant_gets_real_links(tmp_path: Path) -> None:
    with ledger_with_cases(tmp_path / "l.sqlite", TENANT) as led:
        rows, summary = cases_and_summary(outputs.write_review(led, None, tmp_path / "r.xlsx"))
        frame = pl.read_csv(outputs.export(led, tmp_path / "c.csv"))
    url = f"{TENANT}/case/EMG000000001"
    assert rows[0] == ("EMG000000001", url, url)
    assert "Links" not in summary and summary["Host"] == TENANT
    assert frame["Link"].to_list() == [url, f"{TENANT}/case/EMG000000002"]


def test_a_sandbox_gets_no_link_and_a_note(tmp_path: Path) -> None:
    with ledger_with_cases(tmp_path / "l.sqlite", SANDBOX) as led:
        rows, summary = cases_and_summary(outputs.write_review(led, None, tmp_path / "r.xlsx"))
        frame = pl.read_csv(outputs.export(led, tmp_path / "c.csv"))
        parquet = pl.read_parquet(outputs.export(led, tmp_path / "c.parquet"))
        given = cases_and_summary(outputs.write_review(led, None, tmp_path / "t.xlsx",
                                                       host=TENANT))
    assert rows == [("EMG000000001", None, None), ("EMG000000002", None, None)]
    assert summary["Links"] == NOTE and summary["Host"] == SANDBOX
    assert frame["Link"].to_list() == parquet["Link"].to_list() == [None, None]
    assert frame["Case"].to_list() == ["EMG000000001", "EMG000000002"]
    assert given[0][0][2] == f"{TENANT}/case/EMG000000001"  # a host given wins


def test_a_sandbox_run_leaves_no_dead_link(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 2, prefix="LNK")
    env = {"EMG_USERNAME": DEFAULT_USER, "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": "",
           "EMG_HOST": ""}
    ledger = tmp_path / "m.sandbox.sqlite"
    run = CliRunner().invoke(main, ["run", str(manifest), "--sandbox", "--ledger", str(ledger)],
                             env=env, catch_exceptions=False)
    assert run.exit_code == 0, run.output
    rows, summary = cases_and_summary(tmp_path / "m_review.xlsx")
    assert len(rows) == 2 and all(case and link is None and target is None
                                  for case, link, target in rows)
    host = str(summary["Host"])
    assert host.startswith("http://127.0.0.1:")
    assert summary["Links"] == NOTE.replace(SANDBOX, host)
    book = openpyxl.load_workbook(tmp_path / "m_review.xlsx")
    assert [c.coordinate for ws in book.worksheets for row in ws.iter_rows() for c in row
            if c.hyperlink is not None] == []
    with (tmp_path / "m_results.csv").open(newline="") as f:
        assert not any("/case/" in cell for row in csv.reader(f) for cell in row)
    export = CliRunner().invoke(main, ["export", "--ledger", str(ledger), "--out",
                                       str(tmp_path / "cases.csv")], env=env,
                                catch_exceptions=False)
    assert export.exit_code == 0, export.output
    frame = pl.read_csv(tmp_path / "cases.csv")
    assert frame["Link"].null_count() == 2 and frame["Case"].null_count() == 0
