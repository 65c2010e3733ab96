"""A ledger belongs to the server it was made against: every command that sends refuses
another server before sending anything (exit 2); ``--sandbox`` has its own ledger file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from click.testing import Result

from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    SandboxThread,
    demo_fixture_path,
)
from tests.cli_sandbox import api_requests, invoke
from tests.manifests import write_manifest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sandboxes() -> Iterator[tuple[SandboxThread, SandboxThread]]:
    """Two servers: A, where a ledger was made, and B, another one."""
    config = SandboxConfig(fixture=demo_fixture_path(), advance_after=0)
    with SandboxThread(config) as a, SandboxThread(config) as b:
        yield a, b






def refusal(ledger: Path, bound: str, given: str) -> str:
    return (f"Error: ledger {ledger} belongs to {bound} (account {DEFAULT_USER}), not to "
            f"{given}: nothing was sent. Its cases are on that server; to work with {given}, "
            f"start a new ledger with --ledger NEW.sqlite, or move {ledger} away.\n")


def said(result: Result) -> list[str]:
    """What a command said on stderr (the summary is there), progress lines left out."""
    return [line for line in result.stderr.splitlines()
            if not re.match(r"(validating|running): \d+/\d+ families, ", line)]


@pytest.mark.slow
def test_the_readme_quickstart_then_a_sandbox_on_another_port_creates_the_cases_there(
        tmp_path: Path, sandboxes: tuple[SandboxThread, SandboxThread]) -> None:
    """``run inputs/example.csv --sandbox``, then the walk-through's ``run`` against a
    sandbox of its own: its 4 cases are created there, not skipped."""
    _, other = sandboxes
    manifest = tmp_path / "example.csv"
    shutil.copy(ROOT / "inputs" / "example.csv", manifest)
    first = invoke("run", str(manifest), "--sandbox")
    assert first.exit_code == 0, first.output
    assert said(first)[-1] == f"ledger: {tmp_path / 'example.sandbox.ledger.sqlite'}"
    assert not (tmp_path / "example.ledger.sqlite").exists()

    second = invoke("run", str(manifest), "--host", other.url)
    assert second.exit_code == 0, second.output
    assert said(second)[0] == (
        "done: 4 families: created 4, adopted 0, updated 2, skipped 0, failed 0, unknown 0")
    assert said(second)[-1] == f"ledger: {tmp_path / 'example.ledger.sqlite'}"
    assert len(other.state.cases) == 4

    again = invoke("run", str(manifest), "--sandbox")  # its own ledger still
    assert again.exit_code == 0, again.output
    assert said(again)[0].startswith("done: 4 families: created 0,")
    status = invoke("status", str(manifest))  # the manifest's real-host ledger
    assert status.stdout.splitlines()[1] == f"Server: {other.url} (account {DEFAULT_USER})"
    assert not list(tmp_path.glob("*.lock"))


def test_a_ledger_of_host_a_used_against_host_b_exits_2_and_sends_nothing(
        tmp_path: Path, sandboxes: tuple[SandboxThread, SandboxThread]) -> None:
    a, b = sandboxes
    manifest = write_manifest(tmp_path / "m.csv", 2, prefix="AB")
    assert invoke("run", str(manifest), "--quiet", url=a.url).exit_code == 0
    ledger = tmp_path / "m.ledger.sqlite"

    result = invoke("run", str(manifest), url=b.url)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == refusal(ledger, a.url, b.url)
    assert api_requests(b) == {}
    assert b.state.cases == {}

    fresh = invoke("run", str(manifest), "--quiet", "--ledger", str(tmp_path / "b.sqlite"),
                   url=b.url)
    assert fresh.exit_code == 0, fresh.output
    assert len(b.state.cases) == 2


def test_a_dry_run_ties_the_ledger_to_no_host(
        tmp_path: Path, sandboxes: tuple[SandboxThread, SandboxThread]) -> None:
    """A dry run against a test tenant created nothing there: the real run may go elsewhere."""
    a, b = sandboxes
    manifest = write_manifest(tmp_path / "m.csv", 2, prefix="DR")
    assert invoke("run", str(manifest), "--dry-run", "--quiet", url=a.url).exit_code == 0
    assert a.state.cases == {}
    result = invoke("run", str(manifest), "--quiet", url=b.url)
    assert result.exit_code == 0, result.output
    assert len(b.state.cases) == 2
    again = invoke("run", str(manifest), url=a.url)  # now the cases are on b
    assert again.exit_code == 2
    assert again.stderr == refusal(tmp_path / "m.ledger.sqlite", b.url, a.url)


def test_validate_server_and_pull_against_another_host_exit_2_and_send_nothing(
        tmp_path: Path, sandboxes: tuple[SandboxThread, SandboxThread]) -> None:
    a, b = sandboxes
    manifest = write_manifest(tmp_path / "m.csv", 1, prefix="VP")
    assert invoke("run", str(manifest), "--quiet", url=a.url).exit_code == 0
    ledger = tmp_path / "m.ledger.sqlite"
    for args in (["validate", str(manifest), "--server"],
                 ["pull", "info", "--ledger", str(ledger), "--out", str(tmp_path / "i.csv")],
                 ["pull", "candidates", str(manifest), "--out", str(tmp_path / "c.csv")]):
        result = invoke(*args, url=b.url)
        assert (result.exit_code, result.stderr) == (2, refusal(ledger, a.url, b.url)), args
    assert api_requests(b) == {}
    assert not (tmp_path / "i.csv").exists()
    same = invoke("pull", "info", "--ledger", str(ledger), "--out", str(tmp_path / "i.csv"),
                  url=a.url)
    assert same.exit_code == 0, same.output


@pytest.mark.slow
def test_listen_on_a_ledger_of_another_host_exits_2_before_listening(
        tmp_path: Path, sandboxes: tuple[SandboxThread, SandboxThread]) -> None:
    a, b = sandboxes
    manifest = write_manifest(tmp_path / "m.csv", 1, prefix="LI")
    assert invoke("run", str(manifest), "--quiet", url=a.url).exit_code == 0
    ledger = tmp_path / "m.ledger.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMG_")}
    env.update(EMG_HOST=b.url, EMG_USERNAME=DEFAULT_USER, EMG_PASSWORD=DEFAULT_PASSWORD)
    done = subprocess.run(
        [sys.executable, "-m", "batch", "listen", "--port", "0", "--ledger", str(ledger)],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == refusal(ledger, a.url, b.url)
    assert api_requests(b) == {}


def test_status_and_export_show_the_ledgers_server(
        tmp_path: Path, sandboxes: tuple[SandboxThread, SandboxThread]) -> None:
    a, _ = sandboxes
    manifest = write_manifest(tmp_path / "m.csv", 1, prefix="SE")
    assert invoke("run", str(manifest), "--quiet", url=a.url).exit_code == 0
    status = invoke("status", str(manifest))
    assert status.stdout.splitlines()[:2] == [
        "Families: 1", f"Server: {a.url} (account {DEFAULT_USER})"]
    data = json.loads(invoke("status", str(manifest), "--json").stdout)
    assert data["server"] == {"host": a.url, "account": DEFAULT_USER}
    out = tmp_path / "cases.xlsx"
    assert invoke("export", str(manifest), "--out", str(out)).exit_code == 0
    summary = {row[0]: row[1] for row in openpyxl.load_workbook(out)["Summary"].iter_rows(
        values_only=True) if row and row[0]}
    assert summary["Host"] == a.url


def test_a_sandbox_ledger_refuses_a_real_host_and_says_so_in_words(
        tmp_path: Path, sandboxes: tuple[SandboxThread, SandboxThread]) -> None:
    _, b = sandboxes
    manifest = write_manifest(tmp_path / "m.csv", 1, prefix="SB")
    assert invoke("run", str(manifest), "--sandbox", "--quiet").exit_code == 0
    ledger = tmp_path / "m.sandbox.ledger.sqlite"
    result = invoke("run", str(manifest), "--ledger", str(ledger), url=b.url)
    assert result.exit_code == 2
    assert result.stderr == refusal(ledger, "the built-in sandbox (--sandbox)", b.url)
    status = invoke("status", str(manifest))  # the only ledger of the manifest
    assert status.stdout.splitlines()[1] == (
        f"Server: the built-in sandbox (--sandbox) (account {DEFAULT_USER})")
