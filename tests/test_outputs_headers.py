"""One header convention for people: Title Case in every table emg-batch writes (the review
workbook, exports, and the pull tables as written and read back)."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import polars as pl
import pytest

from batch import outputs
from batch.api import Client, Credentials
from batch.ledger import Ledger, State
from batch.outputs.table import header_of
from batch.pull import FinalizedOptions, parse_since, pull_candidates, pull_finalized, pull_info
from batch.pull.finalized import FILE_COLUMNS, REPORT_COLUMNS
from batch.pull.tables import CANDIDATE_COLUMNS, INFO_COLUMNS
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, run_sandbox
from tests import ledgers
from tests.cases import create_minimal


def _title_case(header: str) -> bool:
    return all(word[:1].isupper() or word[:1].isdigit() or word[:1] == "("
               for word in header.split())


@pytest.mark.parametrize(("key", "header"), [
    ("case", "Case"), ("status_change_date", "Status Change Date"), ("report_files",
                                                                       "Report Files"),
    ("already_present", "Already Present"), ("creator_id", "Creator Id"),
    ("creatorId", "Creator Id"), ("hgvs_c", "HGVSc"), ("acmg_classification",
                                                        "ACMG Classification"),
    ("gene name", "Gene Name"), ("Gene", "Gene"), ("=cmd", "=cmd"), ("a.b", "a.b"), ("", ""),
])
def test_header_of(key: str, header: str) -> None:
    assert header_of(key) == header


def test_every_pull_column_is_title_case() -> None:
    for key in (*INFO_COLUMNS, *CANDIDATE_COLUMNS, *REPORT_COLUMNS, *FILE_COLUMNS):
        assert _title_case(header_of(key)), key


def test_review_and_export_headers_are_title_case(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as led:
        led.add_families([ledgers.family("F1", 0), ledgers.family("F2", 1)])
        led.set_step("F1", "create", State.UNKNOWN, error_class="AmbiguousCreate",
                     error_message="lost")
        book = openpyxl.load_workbook(outputs.write_review(
            led, None, tmp_path / "r.xlsx", summary={"problems": ["p"], "elapsed": 61.0,
                                                    "timeline": [[30, 5, 0], [61, 9, 1]]}))
        frame = pl.read_csv(outputs.export(led, tmp_path / "c.csv"))
    # the Failed sheet keeps the manifest's own names; the Summary opens with a sentence,
    # and its table of what needs action is checked here
    headers = {ws.title: [c.value for c in ws[1]] for ws in book.worksheets
               if ws.title not in ("Failed", "Summary")}
    headers["Summary"] = [c.value for c in book["Summary"][4]]
    assert headers["Summary"] == ["Family Id", "Where", "Problem", "What To Do"]
    assert set(headers) == {"Summary", "Cases", "Not attempted", "Unknown", "Problems",
                            "Timeline"}
    assert [(t, h) for t, hs in headers.items() for h in hs if not _title_case(str(h))] == []
    assert all(_title_case(c) for c in frame.columns)


def test_colliding_server_keys_get_distinct_headers(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [{"gene_name": "A", "geneName": "B"}]
    out = outputs.write_table(rows, tmp_path / "t.parquet", columns=("gene_name", "geneName"))
    assert pl.read_parquet(out).columns == ["Gene Name", "Gene Name (2)"]


async def test_pulled_tables_as_written_are_title_case(tmp_path: Path) -> None:
    """Every header of every sheet the pull commands write, as read back."""
    async with run_sandbox(SandboxConfig(advance_after=0)) as sandbox, Client(
        sandbox.url, credentials=Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD),
        rate=500,
    ) as client:
        names = [await create_minimal(client, f"HDR-{n}") for n in range(2)]
        await client.set_status(names[0], "finalized")
        pulled = await pull_finalized(client, FinalizedOptions(
            out=tmp_path / "reports", since=parse_since("1h"), report_types=("all",)))
        tables = [pulled.xlsx, pulled.csv]
        for suffix in ("xlsx", "csv"):
            out = tmp_path / f"variants.{suffix}"
            await pull_candidates(client, names, out=out)
            await pull_info(client, names, out=tmp_path / f"info.{suffix}")
            tables += [out, tmp_path / f"info.{suffix}"]
    headers: dict[str, list[str]] = {}
    for path in tables:
        if path.suffix == ".csv":
            headers[path.name] = pl.read_csv(path).columns
            continue
        for sheet in openpyxl.load_workbook(path).worksheets:
            headers[f"{path.name}:{sheet.title}"] = [str(c.value) for c in sheet[1]]
    assert set(headers) == {"cases.xlsx:Cases", "cases.xlsx:Files", "cases.csv",
                            "variants.xlsx:Candidates", "variants.csv", "info.xlsx:Cases",
                            "info.csv"}
    assert [(name, h) for name, hs in headers.items() for h in hs if not _title_case(h)] == []
    assert headers["cases.xlsx:Files"] == ["Case", "File", "Bytes", "Downloaded At"]
