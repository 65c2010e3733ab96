"""``emg-batch pull ...`` end to end: click commands against a sandbox served from a thread, and
a pull killed with SIGKILL and resumed without downloading anything twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import anyio
import click
import polars as pl
import pytest
from click.testing import CliRunner, Result

from batch.api import Client, Credentials
from batch.cli.pull import pull_group
from batch.ledger import Ledger
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, SandboxThread
from tests.cases import create_minimal
from tests.ledgers import family

REPORT_ROUTE = "GET /api/test/v2/{case}/reports/{type}/{id}"
REPO = Path(__file__).resolve().parent.parent
ENV = {"EMG_USERNAME": DEFAULT_USER, "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": "",
       "EMG_HOST": ""}


async def create(client: Client, n: int) -> str:
    """Create one case; its name."""
    return await create_minimal(client, f"CLI-{n:04d}", gender="Male")


def create_cases(url: str, count: int, finalize: int) -> list[str]:
    """Create *count* cases through the API and finalize the first *finalize*."""

    async def go() -> list[str]:
        creds = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
        async with Client(url, credentials=creds, rate=500) as client:
            names = [await create(client, n) for n in range(count)]
            for name in names[:finalize]:
                await client.set_status(name, "finalized")
            return names

    return anyio.run(go)


def report_gets(url: str) -> int:
    async def go() -> int:
        async with aiohttp.ClientSession() as s, s.get(f"{url}/_sandbox/stats") as resp:
            stats = await resp.json()
        return sum(stats["requests"].get(REPORT_ROUTE, {}).values())

    return anyio.run(go)


def entry_point() -> list[str]:
    """``python -m batch``, or the pull group alone while it is not registered in the CLI."""
    from batch.cli import main

    if isinstance(main, click.Group) and "pull" in main.commands:
        return [sys.executable, "-m", "batch"]
    script = "import sys; from batch.cli.pull import pull_group; pull_group(sys.argv[3:])"
    return [sys.executable, "-c", script, "--"]  # argv: -c -- pull ...


def reports(out: Path) -> list[Path]:
    """Complete report files (a ``.part`` file is never a report)."""
    return [p for p in out.rglob("*") if p.suffix in (".pdf", ".json")]


@pytest.fixture
def sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(SandboxConfig(advance_after=0)) as thread:
        yield thread


def invoke(command: click.Command, args: list[str], **env: str) -> Result:
    return CliRunner().invoke(command, args, env={**ENV, **env}, catch_exceptions=False)


def test_pull_finalized_command(sandbox: SandboxThread, tmp_path: Path) -> None:
    names = create_cases(sandbox.url, 7, finalize=6)
    args = ["finalized", "--host", sandbox.url, "--since", "24h", "--reports", "pdf,json",
            "--out", str(tmp_path), "--page-size", "4", "--rate", "500", "--json"]
    result = invoke(pull_group, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["cases"], summary["downloaded"], summary["failed"]) == (6, 12, 0)
    assert pl.read_csv(tmp_path / "cases.csv")["Case"].to_list() == names[:6]
    assert (tmp_path / "cases.xlsx").is_file()
    again = invoke(pull_group, args)
    assert json.loads(again.stdout)["already_present"] == 12
    assert report_gets(sandbox.url) == 12


def test_pull_finalized_with_a_case_not_finalized_exits_1(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    names = create_cases(sandbox.url, 2, finalize=1)
    result = invoke(pull_group, ["finalized", "--host", sandbox.url, "--status", "finalized",
                                 "--status", "delivered", "--out", str(tmp_path),
                                 "--rate", "500"])
    assert result.exit_code == 1
    assert f"{names[1]}: case is delivered, not finalized" in result.output
    assert "failed 1" in result.output


def test_usage_and_auth_errors(sandbox: SandboxThread, tmp_path: Path) -> None:
    bad_since = invoke(pull_group, ["finalized", "--host", sandbox.url, "--since", "soon",
                                    "--out", str(tmp_path)])
    assert bad_since.exit_code == 2 and "24h" in bad_since.output
    two_sources = invoke(pull_group, ["info", "--cases", "EMG1", "--ledger", __file__,
                                      "--host", sandbox.url, "--out", str(tmp_path / "i.csv")])
    assert two_sources.exit_code == 2
    refused = invoke(pull_group, ["info", "--cases", "EMG1", "--host", sandbox.url,
                                  "--out", str(tmp_path / "i.csv")], EMG_PASSWORD="wrong")
    assert refused.exit_code == 3 and "authentication refused" in refused.output


def test_pull_candidates_and_info_commands(sandbox: SandboxThread, tmp_path: Path) -> None:
    names = create_cases(sandbox.url, 3, finalize=1)
    out = tmp_path / "variants.xlsx"
    result = invoke(pull_group, ["candidates", "--cases", ",".join(names), "--host", sandbox.url,
                                 "--out", str(out), "--rate", "500"])
    assert result.exit_code == 0, result.output
    frame = pl.read_excel(out)
    assert frame["Case"].unique(maintain_order=True).to_list() == names
    assert {"Gene", "Variant", "Tag", "Creator", "Created", "Status"} <= set(frame.columns)

    ledger_path = tmp_path / "run.ledger.sqlite"
    with Ledger.open(ledger_path) as ledger:
        ledger.add_families([family(f"F{i}", i, sample=f"S{i}") for i in range(3)])
        for i, name in enumerate(names):
            ledger.update_family(f"F{i}", case_name=name)
    info = invoke(pull_group, ["info", "--ledger", str(ledger_path), "--host", sandbox.url,
                               "--out", str(tmp_path / "info.parquet"), "--rate", "500"])
    assert info.exit_code == 0, info.output
    assert pl.read_parquet(tmp_path / "info.parquet")["Status"].to_list() == [
        "finalized", "delivered", "delivered"]


@pytest.mark.slow
def test_killed_pull_resumes_without_downloading_twice(tmp_path: Path) -> None:
    # Latency makes the pull slow enough to be killed half way.
    with SandboxThread(SandboxConfig(advance_after=0, latency_ms=40)) as sandbox:
        create_cases(sandbox.url, 12, finalize=12)
        out = tmp_path / "reports"
        args = ["pull", "finalized", "--host", sandbox.url, "--reports", "all", "--out",
                str(out), "--concurrency", "1", "--rate", "500"]
        env = {**os.environ, **ENV}
        proc = subprocess.Popen([*entry_point(), *args], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while len(reports(out)) < 4:
                assert proc.poll() is None, "the pull ended before it could be killed"
                assert time.monotonic() < deadline, "no reports appeared"
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(10)
        time.sleep(0.2)  # let the request the killed process left in flight finish
        kept = reports(out)
        assert 4 <= len(kept) < 24
        before = report_gets(sandbox.url)
        result = invoke(pull_group, args[1:])
        assert result.exit_code == 0, result.output
        assert report_gets(sandbox.url) - before == 24 - len(kept)
        assert len(list(out.rglob("*.pdf"))) == len(list(out.rglob("*.json"))) == 12
        assert not list(out.rglob("*.part"))
        assert f"already present {len(kept)}" in result.output
