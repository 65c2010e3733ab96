"""``emg-batch pull samples`` against a sandbox served from a thread: which case holds each
sample of a manifest (a sample in two cases, one in a single case, one in none), each case read
once, CSV/XLSX/Parquet outputs, formula safety, and the usage errors."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import anyio
import polars as pl
import pytest
from click.testing import CliRunner, Result

from batch.api import Client, Credentials
from batch.cli import main
from batch.pull import pull_samples
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, SandboxThread
from tests.cli_sandbox import api_requests
from tests.manifests import write_manifest

HEADER = ["Sample", "Cases", "Case", "Case Type", "Status", "Created", "Error"]


@pytest.fixture
def sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(SandboxConfig(advance_after=0)) as thread:
        yield thread


def invoke(url: str, *args: str) -> Result:
    env = {"EMG_USERNAME": DEFAULT_USER, "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": "",
           "EMG_HOST": url}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def manifest(sandbox: SandboxThread, tmp_path: Path) -> Path:
    """Three duos: the first imported twice (two cases), the second once, the third never."""
    path = write_manifest(tmp_path / "cases.csv", 3, members=2, prefix="SMP")
    first = write_manifest(tmp_path / "first.csv", 2, members=2, prefix="SMP")
    assert invoke(sandbox.url, "run", str(first)).exit_code == 0
    again = write_manifest(tmp_path / "again.csv", 1, members=2, prefix="SMP")
    result = invoke(sandbox.url, "run", str(again), "--if-exists", "create")
    assert result.exit_code == 0, result.output
    return path


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_which_case_holds_each_sample_of_a_manifest(
    sandbox: SandboxThread, manifest: Path, tmp_path: Path
) -> None:
    before = api_requests(sandbox)
    out = tmp_path / "samples.csv"
    result = invoke(sandbox.url, "pull", "samples", str(manifest), "--out", str(out),
                    "--rate", "200")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == (f"done: 6 samples: 4 in 3 cases, 2 in none, failed 0\n"
                             f"wrote {out}\n")
    rows = read_csv(out)
    assert rows[0] == HEADER
    assert [row[:5] + row[6:] for row in rows[1:]] == [
        ["SMP-000000-S0", "2", "EMG100000001", "Whole Genome", "delivered", ""],
        ["SMP-000000-S0", "2", "EMG100000003", "Whole Genome", "delivered", ""],
        ["SMP-000000-S1", "2", "EMG100000001", "Whole Genome", "delivered", ""],
        ["SMP-000000-S1", "2", "EMG100000003", "Whole Genome", "delivered", ""],
        ["SMP-000001-S0", "1", "EMG100000002", "Whole Genome", "delivered", ""],
        ["SMP-000001-S1", "1", "EMG100000002", "Whole Genome", "delivered", ""],
        ["SMP-000002-S0", "0", "", "", "", ""],
        ["SMP-000002-S1", "0", "", "", "", ""],
    ]
    created = [row[5] for row in rows[1:7]]
    assert all(datetime.strptime(c, "%Y-%m-%dT%H:%M:%SZ") for c in created)  # UTC, as pulls
    asked = api_requests(sandbox)
    assert _new(asked, before, "GET /api/sample") == 6
    assert _new(asked, before, "GET /api/test/{case}") == 3  # each case read once


def _new(after: dict[str, object], before: dict[str, object], route: str) -> int:
    def count(stats: dict[str, object]) -> int:
        codes = stats.get(route) or {}
        assert isinstance(codes, dict)
        return int(codes.get("200", 0))

    return count(after) - count(before)


@pytest.mark.slow
def test_xlsx_and_parquet_hold_the_same_rows(
    sandbox: SandboxThread, manifest: Path, tmp_path: Path
) -> None:
    for suffix in (".xlsx", ".parquet"):
        out = tmp_path / f"samples{suffix}"
        result = invoke(sandbox.url, "pull", "samples", "--samples",
                        "SMP-000000-S0,SMP-000002-S0", "--out", str(out))
        assert result.exit_code == 0, result.output
        frame = pl.read_excel(out) if suffix == ".xlsx" else pl.read_parquet(out)
        assert frame.columns == HEADER
        assert frame["Case"].to_list() == ["EMG100000001", "EMG100000003", None]
        assert frame["Cases"].to_list() == [2, 2, 0]
        assert frame.schema["Created"] == pl.Datetime("us") or suffix == ".xlsx"


def test_sample_names_are_formula_safe_in_the_csv(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    out = tmp_path / "s.csv"
    result = invoke(sandbox.url, "pull", "samples", "--samples", "=HYPERLINK(\"x\"),@SUM(1)",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    assert [row[:2] for row in read_csv(out)[1:]] == [["'=HYPERLINK(\"x\")", "0"],
                                                      ["'@SUM(1)", "0"]]


def test_usage_errors_exit_2(sandbox: SandboxThread, manifest: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "s.csv")
    both = invoke(sandbox.url, "pull", "samples", str(manifest), "--samples", "S1", "--out", out)
    assert both.exit_code == 2
    assert "name the samples one way: MANIFEST or --samples S1,S2" in both.stderr
    neither = invoke(sandbox.url, "pull", "samples", "--out", out)
    assert neither.exit_code == 2
    suffix = invoke(sandbox.url, "pull", "samples", "--samples", "S1", "--out", "s.txt")
    assert suffix.exit_code == 2 and "--out must end in .xlsx, .csv or .parquet" in suffix.stderr
    empty = invoke(sandbox.url, "pull", "samples", "--samples", " , ", "--out", out)
    assert (empty.exit_code, empty.stderr) == (
        2, "Error: no sample names found (no BioSample Name in the manifest)\n")


def test_a_case_that_cannot_be_read_is_a_row_with_its_error(sandbox: SandboxThread) -> None:
    """A sample whose note names a case that is gone: the row says so, the sample failed."""
    sandbox.state.samples["GONE-01"] = [{"name": "GONE-01", "note": "EMG999999999"}]

    async def go() -> tuple[list[dict[str, object]], list[str]]:
        creds = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
        async with Client(sandbox.url, credentials=creds, rate=500) as client:
            result = await pull_samples(client, ["GONE-01", "NONE-01"], concurrency=2)
            return result.rows, result.failed

    rows, failed = anyio.run(go)
    assert failed == ["GONE-01"]
    assert rows[0]["case"] == "EMG999999999" and "HTTP 404" in str(rows[0]["error"])
    assert rows[1] == {"sample": "NONE-01", "cases": 0, "error": None}
