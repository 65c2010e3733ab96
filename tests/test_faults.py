"""The fault matrix: under each fault every family ends succeeded or with a recorded reason,
the server holds exactly one case per family, and the ledger agrees with the server."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import pytest

from batch.api import Client, RetryPolicy
from batch.ledger import Ledger, State, default_path
from batch.manifest import read_manifest
from batch.run import RunOptions, RunSummary, run_manifest
from batch.sandbox import SandboxConfig, SandboxThread, demo_fixture_path, run_sandbox
from tests.manifests import write_manifest
from tests.test_crash import assert_one_case_per_family, check_one_case_per_family, cli_env
from tests.test_runner import CREDENTIALS, sandbox_cases

pytestmark = pytest.mark.slow


async def run_until_done(
    manifest: Path, url: str, *, runs: int = 5, timeout: float = 60.0, **options: Any
) -> list[RunSummary]:
    """Rerun until every family succeeded (or *runs* runs); return every summary."""
    summaries = []
    for _ in range(runs):
        parsed = read_manifest(manifest)
        with Ledger.open(default_path(manifest)) as ledger:
            ledger.lock()
            async with Client(url, credentials=CREDENTIALS, retry=RetryPolicy.for_testing(),
                              timeout=timeout, concurrency=options.get("concurrency", 8)) as client:
                summary = await run_manifest(parsed, client=client, ledger=ledger,
                                             options=RunOptions(**options))
        summaries.append(summary)
        if summary.exit_code == 0:
            break
    return summaries


async def assert_one_case_each(url: str, manifest: Path, families: int) -> None:
    """Exactly one case per family on the sandbox at *url*; the ledger agrees."""
    check_one_case_per_family(await sandbox_cases(url), default_path(manifest), families)


def assert_recorded(manifest: Path) -> None:
    """Every family's steps are succeeded, or failed/unknown with a reason."""
    with Ledger.open(default_path(manifest)) as ledger:
        for record in ledger.iter_families():
            for step in record.steps.values():
                assert step.state in (State.SUCCEEDED, State.FAILED, State.UNKNOWN)
                if step.state is not State.SUCCEEDED:
                    assert step.error_message


async def set_faults(url: str, **faults: Any) -> None:
    """Change the sandbox's faults at run time."""
    async with aiohttp.ClientSession() as session, session.post(
        f"{url}/_sandbox/faults", json=faults
    ) as resp:
        assert resp.status == 200


async def test_429_storm(tmp_path: Path) -> None:
    """A tight server limit: adaptive rate, every family created once, exit 0."""
    async with run_sandbox(SandboxConfig(fixture=demo_fixture_path(), rate_limit=40)) as sb:
        manifest = write_manifest(tmp_path / "m.csv", 60)
        summaries = await run_until_done(manifest, sb.url, concurrency=16)
        assert summaries[-1].exit_code == 0
        await assert_one_case_each(sb.url, manifest, 60)


async def test_5xx_bursts(tmp_path: Path) -> None:
    """A third of requests fail with 500/502/503: retried or reconciled, never duplicated."""
    config = SandboxConfig(fixture=demo_fixture_path(), error_rate=0.3, seed=3)
    async with run_sandbox(config) as sb:
        manifest = write_manifest(tmp_path / "m.csv", 60)
        summaries = await run_until_done(manifest, sb.url, runs=8)
        assert_recorded(manifest)
        assert summaries[-1].exit_code == 0
        await assert_one_case_each(sb.url, manifest, 60)


async def test_latency_spike_past_the_timeout(tmp_path: Path) -> None:
    """Answers slower than the timeout leave creates unknown; a later run adopts them."""
    async with run_sandbox(SandboxConfig(fixture=demo_fixture_path())) as sb:
        manifest = write_manifest(tmp_path / "m.csv", 6)
        parsed = read_manifest(manifest)
        with Ledger.open(default_path(manifest)) as ledger:
            # two attempts a request: a worker takes 4 families in turn, each of whose look-ups
            # after the lost answer times out on every attempt
            async with Client(sb.url, credentials=CREDENTIALS,
                              retry=RetryPolicy.for_testing(attempts=2), timeout=0.4,
                              rate=1000) as client:
                await client.storage(1)  # logged in and looked up before the spike
                await set_faults(sb.url, latency_ms=600)
                # no look-up before the creates: the creates themselves meet the spike; the
                # look-up after each lost answer meets it too (no pause before it: settle=0)
                first = await run_manifest(parsed, client=client, ledger=ledger,
                                           options=RunOptions(if_exists="create", settle=0))
        assert first.unknown == 6
        assert first.exit_code == 1
        assert_recorded(manifest)
        await set_faults(sb.url, latency_ms=0)
        await anyio.sleep(0.7)  # let the slow creates land on the server
        summaries = await run_until_done(manifest, sb.url)
        assert summaries[-1].exit_code == 0
        assert sum(s.adopted for s in summaries) == 6
        await assert_one_case_each(sb.url, manifest, 6)


async def test_server_unreachable_during_validation(tmp_path: Path) -> None:
    """Look-ups that cannot reach the server stop the run before anything is sent."""
    async with run_sandbox(SandboxConfig(fixture=demo_fixture_path())) as sb:
        url = sb.url
    manifest = write_manifest(tmp_path / "m.csv", 3)
    summaries = await run_until_done(manifest, url, runs=1)
    assert summaries[0].stopped == "server"
    assert summaries[0].exit_code == 3
    assert "nothing was sent" in (summaries[0].stop_reason or "")


async def test_token_expiry_mid_run(tmp_path: Path) -> None:
    """Tokens that expire every second: re-login and carry on."""
    config = SandboxConfig(fixture=demo_fixture_path(), token_ttl=1.0, latency_ms=10)
    async with run_sandbox(config) as sb:
        manifest = write_manifest(tmp_path / "m.csv", 80)
        summaries = await run_until_done(manifest, sb.url, runs=1)
        assert summaries[0].exit_code == 0
        await assert_one_case_each(sb.url, manifest, 80)


def test_sandbox_restarted_mid_run(tmp_path: Path) -> None:
    """The server goes away and comes back with its data: the run finishes, no duplicate."""
    config = SandboxConfig(fixture=demo_fixture_path(), latency_ms=20)
    first = SandboxThread(config)
    first.start()
    url, state = first.url, first.state
    port = int(url.rsplit(":", 1)[1])
    manifest = write_manifest(tmp_path / "m.csv", 120)
    proc = subprocess.Popen(
        [sys.executable, "-m", "batch", "run", str(manifest), "--host", url, "--quiet"],
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    from tests.test_crash import wait_for_progress

    assert wait_for_progress(proc, default_path(manifest), 20)
    first.stop()
    second = SandboxThread(config, port=port, state=state)
    second.start()
    try:
        proc.communicate(timeout=120)
        for _ in range(3):
            if proc.returncode == 0:
                break
            proc = subprocess.Popen(
                [sys.executable, "-m", "batch", "run", str(manifest), "--host", url, "--quiet"],
                env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            proc.communicate(timeout=120)
        assert proc.returncode == 0
        assert_one_case_per_family(url, default_path(manifest), 120)
    finally:
        second.stop()


async def test_disk_full_for_the_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unwritable ledger stops the run (exit 3); a rerun finishes without duplicates."""
    async with run_sandbox(SandboxConfig(fixture=demo_fixture_path())) as sb:
        manifest = write_manifest(tmp_path / "m.csv", 40)
        real = Ledger._execute
        calls = {"n": 0}

        def flaky(self: Ledger, sql: str, params: Any = ()) -> sqlite3.Cursor:
            if sql.startswith(("INSERT INTO steps", "UPDATE steps SET state")):
                calls["n"] += 1
                if calls["n"] > 30:
                    from batch.errors import LedgerError

                    raise LedgerError(f"cannot write ledger {self.path}: database or disk is full")
            return real(self, sql, params)

        monkeypatch.setattr(Ledger, "_execute", flaky)
        first = await run_until_done(manifest, sb.url, runs=1)
        assert first[0].stopped == "ledger"
        assert first[0].exit_code == 3
        monkeypatch.setattr(Ledger, "_execute", real)
        summaries = await run_until_done(manifest, sb.url)
        assert summaries[-1].exit_code == 0
        await assert_one_case_each(sb.url, manifest, 40)


def test_ledger_locked_by_another_process(tmp_path: Path) -> None:
    """A second `emg-batch run` on a ledger in use refuses at once (exit 2), sends nothing."""
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path(), latency_ms=50)) as sandbox:
        manifest = write_manifest(tmp_path / "m.csv", 200)
        ledger = default_path(manifest)
        args = [sys.executable, "-m", "batch", "run", str(manifest), "--host", sandbox.url,
                "--quiet", "--concurrency", "2"]
        first = subprocess.Popen(args, env=cli_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        from tests.test_crash import wait_for_progress

        assert wait_for_progress(first, ledger, 2)
        second = subprocess.run(args, env=cli_env(), capture_output=True, timeout=60)
        assert second.returncode == 2
        assert b"in use by another emg-batch process" in second.stderr
        first.terminate()
        first.communicate(timeout=60)


async def test_all_faults_at_once_then_recover(tmp_path: Path) -> None:
    """Limits, errors and dropped answers together: the reruns converge."""
    config = SandboxConfig(fixture=demo_fixture_path(), rate_limit=200, error_rate=0.1,
                           drop_after_commit=0.1, seed=11)
    async with run_sandbox(config) as sb:
        manifest = write_manifest(tmp_path / "m.csv", 80)
        summaries = await run_until_done(manifest, sb.url, runs=8, concurrency=16)
        assert summaries[-1].exit_code == 0
        await assert_one_case_each(sb.url, manifest, 80)
        assert len(await sandbox_cases(sb.url)) == 80
        await anyio.lowlevel.checkpoint()


async def test_outage_holds_the_pool_instead_of_failing_families(tmp_path: Path) -> None:
    """503 for everything for a few seconds mid-run: the run waits, nothing fails."""
    from batch.api import RetryPolicy as Policy

    async with run_sandbox(SandboxConfig(fixture=demo_fixture_path(), latency_ms=20)) as sb:
        manifest = write_manifest(tmp_path / "m.csv", 120)
        parsed = read_manifest(manifest)

        async def outage_soon() -> None:
            await anyio.sleep(0.5)
            await set_faults(sb.url, outage_seconds=3)

        with Ledger.open(default_path(manifest)) as ledger:
            async with Client(sb.url, credentials=CREDENTIALS, rate=100,
                              retry=Policy(wait_initial=0.01, wait_max=0.05)) as client:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(outage_soon)
                    summary = await run_manifest(parsed, client=client, ledger=ledger)
                assert client.stats.outage_waits > 0
        assert (summary.failed, summary.unknown, summary.exit_code) == (0, 0, 0)
        await assert_one_case_each(sb.url, manifest, 120)
