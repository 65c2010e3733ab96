"""Formula safety: no CSV emg-batch writes runs server or manifest text as a formula.

The attack is a server (or a manifest) whose values, and even keys, start with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return. Every CSV that holds such text is read back with the
csv module; no cell and no header may start with one of them, and the text must still be
there behind the quote.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from aiohttp import web

from batch import outputs
from batch.api import Client, Credentials, RetryPolicy
from batch.ledger import Ledger, State
from batch.manifest import read_manifest
from batch.outputs.files import FORMULA_START
from batch.pull import pull_candidates, pull_info
from batch.pull.finalized import REPORT_COLUMNS
from tests import ledgers

HOSTILE = ('=HYPERLINK("http://127.0.0.1/x","y")', "+SUM(1)", "-1+2", "@A1", "\tTAB", "\rCR")


def _unsafe(cells: list[list[str]]) -> list[str]:
    return [c for row in cells for c in row if c.startswith(FORMULA_START)]


def _csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# --------------------------------------------------------------------------- the one rule


@pytest.mark.parametrize("text", [*HOSTILE, "ok", "", " =1", "EMG1", "a=b"])
def test_cell_and_table_rules_agree(text: str) -> None:
    frame = pl.DataFrame({"c": [text]})
    assert outputs.csv_safe(frame)["c"][0] == outputs.formula_safe(text)
    expected = "'" + text if text[:1] in FORMULA_START and text else text
    assert outputs.formula_safe(text) == expected


def test_headers_are_made_safe_and_stay_distinct() -> None:
    frame = pl.DataFrame({"=a": ["x"], "'=a": ["y"], "n": [1]})
    assert outputs.csv_safe(frame).columns == ["'=a", "'=a (2)", "n"]


# --------------------------------------------------------------------------- a hostile server


def _hostile_app() -> web.Application:
    """An Emedgene look-alike whose every value and key could start a formula."""

    async def info(request: web.Request) -> web.Response:
        case = request.match_info["case"]
        if case == "EMG404":
            return web.json_response({"message": HOSTILE[0]}, status=404)
        return web.json_response({"status": HOSTILE[2], "created": HOSTILE[3],
                                  "creator": {"name": HOSTILE[1], "id": 7},
                                  "last_update": HOSTILE[4]})

    async def candidates(request: web.Request) -> web.Response:
        return web.json_response({"hits": [{"gene": HOSTILE[0], "variant": HOSTILE[5],
                                            "=cmd": "plain", "@key": HOSTILE[1]}]})

    app = web.Application()
    app.router.add_get("/api/test/{case}/info", info)
    app.router.add_get("/api/candidates/{case}", candidates)
    return app


@pytest.fixture
async def hostile_client() -> AsyncIterator[Client]:
    runner = web.AppRunner(_hostile_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with Client(f"http://127.0.0.1:{port}", credentials=Credentials(token="t"),
                          retry=RetryPolicy.for_testing()) as client:
            yield client
    finally:
        await runner.cleanup()


async def test_pull_info_csv_is_safe(hostile_client: Client, tmp_path: Path) -> None:
    out = tmp_path / "info.csv"
    result = await pull_info(hostile_client, ["EMG1", "EMG404"], out=out)
    assert result.failed == ["EMG404"]
    rows = _csv(out)
    assert rows[0] == ["Case", "Status", "Created", "Creator", "Creator Id", "Last Update",
                       "Error"]
    assert _unsafe(rows) == []
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["Status"] == "'" + HOSTILE[2] and first["Creator"] == "'" + HOSTILE[1]
    assert first["Last Update"] == "'" + HOSTILE[4] and first["Creator Id"] == "7"
    error = dict(zip(rows[0], rows[2], strict=True))["Error"]
    assert error == f"'{HOSTILE[0]} (HTTP 404)"


async def test_pull_candidates_csv_is_safe_headers_too(hostile_client: Client,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "variants.csv"
    await pull_candidates(hostile_client, ["EMG1"], out=out)
    rows = _csv(out)
    assert _unsafe(rows) == []
    assert "'=cmd" in rows[0] and "'@key" in rows[0]  # server keys are server text
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["Gene"] == "'" + HOSTILE[0] and row["Variant"] == "'" + HOSTILE[5]


async def test_pull_tables_as_xlsx_and_parquet_keep_values(hostile_client: Client,
                                                           tmp_path: Path) -> None:
    await pull_candidates(hostile_client, ["EMG1"], out=tmp_path / "v.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "v.xlsx").active
    assert sheet is not None
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.coordinate
    header = [c.value for c in sheet[1]]
    assert "=cmd" in header and sheet.cell(1, header.index("=cmd") + 1).data_type == "s"
    assert sheet.cell(2, header.index("Gene") + 1).value == HOSTILE[0]
    await pull_candidates(hostile_client, ["EMG1"], out=tmp_path / "v.parquet")
    frame = pl.read_parquet(tmp_path / "v.parquet")
    assert frame["Gene"][0] == HOSTILE[0]  # Parquet is data, not a spreadsheet: unchanged


def test_finalized_table_csv_is_safe(tmp_path: Path) -> None:
    row: dict[str, object] = dict.fromkeys(REPORT_COLUMNS, HOSTILE[1])
    row.update(case="EMG1", report_bytes=10, last_downloaded_at=None, downloaded=1,
               already_present=0, error=HOSTILE[0])
    out = outputs.write_table([row], tmp_path / "cases.csv", columns=REPORT_COLUMNS)
    rows = _csv(out)
    assert rows[0] == ["Case", "Status", "Status Change Date", "Created", "Delivered Date",
                       "Reports", "Report Files", "Report Bytes", "Last Downloaded At",
                       "Downloaded", "Already Present", "Error"]
    assert _unsafe(rows) == []
    assert rows[1][-1] == "'" + HOSTILE[0] and rows[1][-3:-1] == ["1", "0"]


# --------------------------------------------------------------------------- export and results


def test_export_csv_every_cell_is_safe(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as led:
        led.add_families([ledgers.family(text, i, sample=text) for i, text in enumerate(HOSTILE)])
        for text in HOSTILE:
            led.set_step(text, "create", State.FAILED, attempt=True, http_status=400,
                         error_class="PermanentError", error_message=text)
        out = outputs.export(led, tmp_path / "cases.csv")
    rows = _csv(out)
    assert _unsafe(rows) == []
    assert [r[0] for r in rows[1:]] == ["'" + t for t in HOSTILE]


def _update_manifest(tmp_path: Path) -> Path:
    path = tmp_path / "update.csv"
    path.write_text('Case Id,Family Id,Case Type,Files Names,BioSample Name,Sex,Lab Code\n'
                    '"=OWN",F1,Whole Genome,s3://b/a.fastq.gz,S1,male,"=1+1"\n'
                    ',F2,Whole Genome,s3://b/b.fastq.gz,S2,male,-2\n', encoding="utf-8")
    return path


def test_results_csv_quotes_what_emg_batch_writes_only(tmp_path: Path) -> None:
    """The manifest's own cells stay verbatim (the file is run again); a case name from the
    server and the Errors text are made safe."""
    manifest = read_manifest(_update_manifest(tmp_path))
    with Ledger.open(tmp_path / "l.sqlite") as led:
        led.add_families([ledgers.family("F1", 0), ledgers.family("F2", 1)])
        led.set_step("F1", "create", State.SUCCEEDED, case_name="=OWN")
        led.update_family("F1", case_name="=OWN")
        led.set_step("F2", "create", State.SUCCEEDED, case_name="=SERVER")
        led.update_family("F2", case_name="=SERVER")
        led.set_step("F2", "assign", State.FAILED, http_status=400,
                     error_class="PermanentError", error_message="x")
        out = outputs.write_results(led, manifest, tmp_path / "r.csv")
    rows = _csv(out)
    header = rows[0]
    by_family = {r[header.index("Family Id")]: dict(zip(header, r, strict=True))
                 for r in rows[1:]}
    assert by_family["F1"]["Case Id"] == "=OWN"  # the manifest's cell, verbatim
    assert by_family["F1"]["Lab Code"] == "=1+1" and by_family["F2"]["Lab Code"] == "-2"
    assert by_family["F2"]["Case Id"] == "'=SERVER"


def test_results_errors_cells_are_safe(tmp_path: Path) -> None:
    manifest = read_manifest(_update_manifest(tmp_path))
    out = outputs.write_results_csv(manifest, tmp_path / "r.csv", case_ids={},
                                    errors={2: ["=1+1 is not a valid value"], 3: ["-x", "y"]})
    rows = _csv(out)
    assert rows[0][0] == "Errors"
    assert [r[0] for r in rows[1:]] == ["'=1+1 is not a valid value", "'-x;y"]


def test_review_headers_are_text(tmp_path: Path) -> None:
    """XLSX keeps text as text, headers included: a Failed sheet of a manifest whose column
    names look like formulas."""
    path = tmp_path / "m.csv"
    path.write_text("Family Id,Case Type,Files Names,BioSample Name,Sex,=cmd\n"
                    "F1,Whole Genome,s3://b/a.fastq.gz,S1,male,+1\n", encoding="utf-8")
    manifest = read_manifest(path)
    with Ledger.open(tmp_path / "l.sqlite") as led:
        led.add_families([ledgers.family("F1", 0)])
        led.set_step("F1", "create", State.FAILED, error_class="BuildError", error_message="b")
        rows = [{"number": r.number, "cells": dict(r.cells)} for r in manifest.family("F1").rows]
        led.update_family("F1", rows=json.dumps(rows))
        book = openpyxl.load_workbook(outputs.write_review(led, manifest, tmp_path / "r.xlsx"))
    failed = book["Failed"]
    header = list(failed[1])
    cmd = next(c for c in header if c.value == "=cmd")
    assert cmd.data_type == "s"
    assert all(c.data_type != "f" for ws in book.worksheets for r in ws.iter_rows() for c in r)
