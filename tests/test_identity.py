"""Which case is a family's, decided by the server's evidence: a wrong local clock, lost answers
and a server that forgot its cases never yield a second case or another family's case.

The client runs as a real process; ``faketime`` (Debian's) moves its clock only, while the
sandbox keeps the true time, as a workstation with a wrong clock would see a real tenant.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from batch.ledger import Ledger, State, default_path
from batch.sandbox import SandboxConfig, SandboxThread, demo_fixture_path
from tests.cli_sandbox import invoke
from tests.clocks import clock_env, needs_faketime
from tests.ledgers import force_state
from tests.manifests import write_manifest
from tests.test_crash import assert_one_case_per_family, cli_env, sandbox_cases


def run_at(offset: str, manifest: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``emg-batch run`` as a process whose clock is *offset* (``+600s``) from the true time."""
    command = [sys.executable, "-m", "batch", "run", str(manifest), "--host", url, *extra]
    return subprocess.run(command, env=clock_env(cli_env(), offset), capture_output=True,
                          text=True, timeout=180, check=False)


def joined(path: Path, first: Path, second: Path) -> Path:
    """One manifest of both: *first* whole, then *second*'s rows under the same header."""
    rows = second.read_text(encoding="utf-8").splitlines(True)[1:]
    path.write_text(first.read_text(encoding="utf-8") + "".join(rows), encoding="utf-8")
    return path


def forget_answers(ledger_path: Path) -> None:
    """Every create as a lost answer leaves it: unknown, no case on record."""
    with Ledger.open(ledger_path) as ledger:
        ids = list(ledger.snapshot())
        for family_id in ids:
            force_state(ledger, family_id, "create", State.UNKNOWN)
    with sqlite3.connect(ledger_path) as conn:
        conn.execute("UPDATE families SET case_name = NULL")
    conn.close()


@pytest.mark.slow
@needs_faketime
@pytest.mark.parametrize(("first", "second"), [("+600s", "-600s"), ("-600s", "+600s")])
def test_lost_answers_under_a_wrong_clock_never_duplicate(tmp_path: Path, first: str,
                                                          second: str) -> None:
    """Every create's answer lost, the client's clock 10 minutes off: one case per family."""
    families = 12
    config = SandboxConfig(fixture=demo_fixture_path(), drop_after_commit=1.0, seed=3)
    with SandboxThread(config) as sandbox:
        manifest = write_manifest(tmp_path / "m.csv", families)
        one = run_at(first, manifest, sandbox.url)
        assert one.returncode in (0, 1), one.stderr
        assert "clock is 10.0 minutes" in one.stderr
        two = run_at(second, manifest, sandbox.url)
        assert two.returncode == 0, two.stderr
        assert_one_case_per_family(sandbox.url, default_path(manifest), families)


@pytest.mark.slow
@needs_faketime
def test_a_create_left_unknown_is_found_by_the_server_clock(tmp_path: Path) -> None:
    """Created with the clock 10 minutes fast, answers then lost (a crash): the rerun, with
    the clock 10 minutes slow, finds every case and sends no create."""
    families = 8
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path())) as sandbox:
        manifest = write_manifest(tmp_path / "m.csv", families)
        assert run_at("+600s", manifest, sandbox.url).returncode == 0
        forget_answers(default_path(manifest))
        again = run_at("-600s", manifest, sandbox.url)
        assert again.returncode == 0, again.stderr
        assert f"adopted {families}" in again.stderr
        assert_one_case_per_family(sandbox.url, default_path(manifest), families)


@pytest.mark.slow
def test_a_lost_create_with_its_look_up_failed_is_never_sent_again(tmp_path: Path) -> None:
    """A case that another create made for the same content is found by its content even when
    the server's times say the lost create did not make it: never a second case."""
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path())) as sandbox:
        manifest = write_manifest(tmp_path / "m.csv", 3)
        assert invoke("run", str(manifest), "--quiet", url=sandbox.url).exit_code == 0
        forget_answers(default_path(manifest))
        with sqlite3.connect(default_path(manifest)) as conn:  # "sent" a day later
            conn.execute("UPDATE steps SET server_started_at = server_started_at + 86400")
        conn.close()
        again = invoke("run", str(manifest), url=sandbox.url)
        assert again.exit_code == 1, again.stderr
        assert "failed 3" in again.stderr
        assert len(sandbox_cases(sandbox.url)) == 3
        adopted = invoke("run", str(manifest), "--if-exists", "adopt", url=sandbox.url)
        assert adopted.exit_code == 0, adopted.stderr
        assert_one_case_per_family(sandbox.url, default_path(manifest), 3)


@pytest.mark.slow
def test_a_server_that_forgot_its_cases_gives_no_case_to_two_families(tmp_path: Path) -> None:
    """A sandbox restarted on the same port answers names the ledger holds for other
    families: each such family stops with what probably happened, for good."""
    first = write_manifest(tmp_path / "a.csv", 4, data_row=False)
    newer = write_manifest(tmp_path / "b.csv", 4, prefix="NEW", data_row=False)
    merged = joined(tmp_path / "both.csv", first, newer)
    ledger = tmp_path / "l.sqlite"
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path())) as sandbox:
        port = int(sandbox.url.rsplit(":", 1)[1])
        assert invoke("run", str(first), "--ledger", str(ledger), "--quiet",
                      url=sandbox.url).exit_code == 0
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path()), port=port) as sandbox:
        result = invoke("run", str(merged), "--ledger", str(ledger), url=sandbox.url)
        assert result.exit_code == 1, result.stderr
        assert "failed 4" in result.stderr
        status = invoke("status", "--ledger", str(ledger))
        assert "has probably forgotten its cases" in status.stdout + status.stderr
        with sqlite3.connect(ledger) as conn:
            names = conn.execute("SELECT case_name FROM families WHERE case_name IS NOT NULL"
                                 ).fetchall()
        conn.close()
        assert len(names) == len(set(names)) == 4
        again = invoke("run", str(merged), "--ledger", str(ledger), url=sandbox.url)
        assert again.exit_code == 1
        assert "failed 4" in again.stderr
        assert len(sandbox_cases(sandbox.url)) == 4, "a conflicted family was created again"


@pytest.mark.slow
def test_a_lost_answer_from_a_server_that_forgot_its_cases_is_a_conflict(tmp_path: Path) -> None:
    """The reused name is found by the sample look-up after a lost answer: the family stops as
    a conflict, and no rerun sends its create again."""
    first = write_manifest(tmp_path / "a.csv", 2, data_row=False)
    newer = write_manifest(tmp_path / "b.csv", 2, prefix="NEW", data_row=False)
    merged = joined(tmp_path / "both.csv", first, newer)
    ledger = tmp_path / "l.sqlite"
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path())) as sandbox:
        port = int(sandbox.url.rsplit(":", 1)[1])
        assert invoke("run", str(first), "--ledger", str(ledger), "-q", url=sandbox.url
                      ).exit_code == 0
    lossy = SandboxConfig(fixture=demo_fixture_path(), drop_after_commit=1.0)
    with SandboxThread(lossy, port=port) as sandbox:
        for _ in range(2):
            result = invoke("run", str(merged), "--ledger", str(ledger), url=sandbox.url)
            assert result.exit_code == 1, result.stderr
            assert "failed 2" in result.stderr
            assert len(sandbox_cases(sandbox.url)) == 2
