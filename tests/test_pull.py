"""``batch.pull`` against a real sandbox on loopback: listing pages, report downloads, resume,
cases that are not finalized, candidates and info tables."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest

from batch.errors import UsageError
from batch.ledger import Ledger, State, default_path
from batch.outputs import write_table
from batch.pull import (
    FinalizedOptions,
    cases_from_ledger,
    cases_from_manifest,
    parse_report_types,
    parse_since,
    pull_candidates,
    pull_case_reports,
    pull_finalized,
    pull_info,
    report_path,
    split_cases,
)
from tests.ledgers import family
from tests.pull_env import Env, sandbox_env

REPORT_ROUTE = "GET /api/test/v2/{case}/reports/{type}/{id}"
LIST_ROUTE = "GET /api/test"


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with sandbox_env() as running:
        yield running


def files(root: Path, pattern: str) -> list[Path]:
    return list(root.rglob(pattern))


def options(out: Path, **kw: Any) -> FinalizedOptions:
    return FinalizedOptions(out=out, since=parse_since("1h"), **kw)


# -- pull finalized ---------------------------------------------------------------------------


async def test_pull_finalized_pages_downloads_and_tables(env: Env, tmp_path: Path) -> None:
    names = await env.create(14, finalize=12)
    result = await pull_finalized(env.client, options(tmp_path, page_size=5,
                                                      report_types=("all",)))
    assert [c.case for c in result.cases] == names[:12]
    assert await env.count(LIST_ROUTE) == 3  # 5 + 5 + 2
    assert (result.downloaded, result.present, result.failed, result.exit_code) == (24, 0, 0, 0)
    pdf = tmp_path / names[0] / "pdf-700001.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert (tmp_path / names[0] / "json-700002.json").read_text().startswith("{")
    assert not files(tmp_path, "*.part")
    table = pl.read_csv(result.csv)
    assert table["Case"].to_list() == names[:12]
    assert table["Report Files"][0] == f"{names[0]}/json-700002.json; {names[0]}/pdf-700001.pdf"
    assert table["Status Change Date"][0].endswith("Z")
    sheet = openpyxl.load_workbook(result.xlsx).active
    assert sheet is not None
    assert [c.value for c in sheet[1]][:3] == ["Case", "Status", "Status Change Date"]
    assert sheet.max_row == 13
    assert isinstance(sheet["C2"].value, datetime)


async def test_rerun_downloads_only_what_is_missing(env: Env, tmp_path: Path) -> None:
    names = await env.create(4, finalize=4)
    first = await pull_finalized(env.client, options(tmp_path))
    assert first.downloaded == 4  # pdf only, the default
    assert not files(tmp_path, "*.json")
    (tmp_path / names[1] / "pdf-700003.pdf").unlink()
    (tmp_path / names[2] / "pdf-700005.pdf.part").write_bytes(b"%PDF-half")  # a killed pull
    before = await env.count(REPORT_ROUTE)
    again = await pull_finalized(env.client, options(tmp_path))
    assert (again.downloaded, again.present) == (1, 3)
    assert await env.count(REPORT_ROUTE) - before == 1
    assert not files(tmp_path, "*.part")


async def test_report_of_a_case_not_finalized_is_that_cases_error(
    env: Env, tmp_path: Path
) -> None:
    names = await env.create(3, finalize=2)
    await env.advance(names[1], "reanalysis")  # finalized once, reopened: nothing to download
    result = await pull_finalized(env.client, options(
        tmp_path, statuses=("finalized", "reanalysis", "delivered"), report_types=("pdf",)))
    by_case = {c.case: c for c in result.cases}
    assert by_case[names[0]].error is None and by_case[names[0]].downloaded == 1
    reopened = by_case[names[1]]
    assert reopened.error is not None and "not finalized" in reopened.error
    never = by_case[names[2]]
    assert never.error is not None and "not finalized" in never.error
    assert result.exit_code == 1 and result.failed == 2
    assert not (tmp_path / names[1]).exists() or not list((tmp_path / names[1]).iterdir())
    rows = pl.read_csv(result.csv)
    assert rows.filter(pl.col("Case") == names[1])["Error"][0] == reopened.error


async def test_since_filters_the_listing(env: Env, tmp_path: Path) -> None:
    await env.create(2, finalize=2)
    future = FinalizedOptions(out=tmp_path, since=parse_since("2999-01-01"))
    result = await pull_finalized(env.client, future)
    assert result.cases == [] and result.exit_code == 0
    assert pl.read_csv(result.csv).height == 0


async def test_case_reports_of_an_unknown_case(env: Env, tmp_path: Path) -> None:
    result = await pull_case_reports(env.client, "EMG000000404", out=tmp_path)
    assert result.error is not None and "404" in result.error
    assert not result.transient


def test_parse_since() -> None:
    now = datetime(2024, 2, 2, 12, 0, tzinfo=UTC)
    assert parse_since("24h", now=now) == "2024-02-01T12:00:00+00:00"
    assert parse_since("7d", now=now) == "2024-01-26T12:00:00+00:00"
    assert parse_since("30m", now=now) == "2024-02-02T11:30:00+00:00"
    assert parse_since("2024-02-01") == "2024-02-01T00:00:00+00:00"
    assert parse_since("2024-02-01T08:00:00+01:00") == "2024-02-01T07:00:00+00:00"
    with pytest.raises(UsageError, match="24h"):
        parse_since("yesterday")


def test_parse_report_types_and_paths(tmp_path: Path) -> None:
    assert parse_report_types(["pdf", "json,pdf"]) == ("pdf", "json")
    assert parse_report_types(["pdf,all"]) == ("all",)
    with pytest.raises(UsageError):
        parse_report_types([" , "])
    assert report_path(tmp_path, "EMG1", "pdf", 7) == tmp_path / "EMG1" / "pdf-7.pdf"
    assert report_path(tmp_path, "EMG1", "vcf", 8) == tmp_path / "EMG1" / "vcf-8.bin"
    assert report_path(tmp_path, "../x", "pdf", 1).parent.parent == tmp_path
    assert split_cases(["EMG1,EMG2", " EMG1 ", ""]) == ["EMG1", "EMG2"]


# -- candidates and info ----------------------------------------------------------------------


async def test_candidates_of_many_cases_in_one_table(env: Env, tmp_path: Path) -> None:
    names = await env.create(3, finalize=1)
    cases = [*names, "EMG000000404"]
    result = await pull_candidates(env.client, cases, concurrency=3, out=tmp_path / "v.parquet")
    assert result.failed == ["EMG000000404"] and result.exit_code == 1
    frame = pl.read_parquet(tmp_path / "v.parquet")
    assert frame["Case"].unique(maintain_order=True).to_list() == cases
    assert frame.columns[:4] == ["Case", "Gene", "Variant", "Tag"]
    ok = frame.filter(pl.col("Error").is_null())
    assert ok["Gene"].null_count() == 0
    assert set(ok["Creator"].to_list()) == {"Sandbox User"}
    assert ok.filter(pl.col("Case") == names[0])["Status"][0] == "finalized"
    missing = frame.filter(pl.col("Case") == "EMG000000404")
    assert missing.height == 1 and "404" in missing["Error"][0]
    xlsx = await pull_candidates(env.client, names, out=tmp_path / "v.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "v.xlsx").active
    assert sheet is not None and sheet.max_row == len(xlsx.rows) + 1


async def test_info_of_many_cases(env: Env, tmp_path: Path) -> None:
    names = await env.create(3, finalize=1)
    result = await pull_info(env.client, names, out=tmp_path / "info.csv")
    assert result.exit_code == 0
    frame = pl.read_csv(tmp_path / "info.csv")
    assert frame["Case"].to_list() == names
    assert frame["Status"].to_list() == ["finalized", "delivered", "delivered"]
    assert frame["Creator"].to_list() == ["Sandbox User"] * 3


def test_tables_keep_text_as_text(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"case": "EMG1", "note": "=HYPERLINK(\"http://x\")", "count": 3},
        {"case": "EMG2", "note": "+1", "count": None},
    ]
    out = write_table(rows, tmp_path / "t.xlsx", columns=("case", "note", "count"))
    sheet = openpyxl.load_workbook(out).active
    assert sheet is not None
    assert sheet["B2"].value == "=HYPERLINK(\"http://x\")" and sheet["B2"].data_type == "s"
    assert sheet["B3"].value == "+1" and sheet["C2"].value == 3
    with pytest.raises(UsageError):
        write_table(rows, tmp_path / "t.txt", columns=("case",))
    assert [p.name for p in tmp_path.iterdir()] == ["t.xlsx"]  # no temporary left behind


def test_case_names_from_manifest_and_ledger(tmp_path: Path) -> None:
    ledger_path = tmp_path / "runs.sqlite"
    with Ledger.open(ledger_path) as ledger:
        ledger.add_families([family("F1", 1, sample="S1", row_hash="h1"),
                             family("F2", 2, sample="S2", row_hash="h2"),
                             family("F3", 3, sample="S3", row_hash="h3")])
        ledger.update_family("F1", case_name="EMG100000001")
        ledger.update_family("F3", case_name="EMG100000003")
        ledger.set_step("F1", "create", State.SUCCEEDED, case_name="EMG100000001")
    assert cases_from_ledger(ledger_path) == ["EMG100000001", "EMG100000003"]

    manifest = tmp_path / "update.csv"
    manifest.write_text("Case Id,Set Status\nEMG100000007,finalized\nEMG100000008,\n")
    assert cases_from_manifest(manifest) == ["EMG100000007", "EMG100000008"]
    assert not default_path(manifest).exists()
