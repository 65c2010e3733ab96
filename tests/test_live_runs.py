"""A run going on, seen from outside: ``status`` and ``export`` while a real ``emg-batch run``
process works against a slow sandbox process say it is in progress, with counts true at that
moment; a ledger deleted under a run is said at its end, never named as if it were there."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batch.ledger.database import LATER_WITHIN
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER
from tests.cli_sandbox import invoke
from tests.manifests import write_manifest
from tests.test_cli_interrupt import cases_on

pytestmark = pytest.mark.slow

FAMILIES = 80
CONCURRENCY = 4


def start_run(manifest: Path, url: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMG_")}
    env.update(EMG_USERNAME=DEFAULT_USER, EMG_PASSWORD=DEFAULT_PASSWORD, EMG_HOST=url)
    return subprocess.Popen([sys.executable, "-m", "batch", "run", str(manifest),
                             "--concurrency", str(CONCURRENCY)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_cases(proc: subprocess.Popen[str], url: str, count: int) -> None:
    deadline = time.monotonic() + 120
    while cases_on(url) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no case was created"
        time.sleep(0.05)


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_status_and_export_during_a_run_say_what_is_true(tmp_path: Path,
                                                         slow_sandbox: str) -> None:
    """Mid-run: the run is in progress (never interrupted or unknown), every case the server
    had a moment ago is counted succeeded, and no more than the server has."""
    manifest = write_manifest(tmp_path / "live.csv", FAMILIES, prefix="LIVE")
    proc = start_run(manifest, slow_sandbox)
    try:
        wait_for_cases(proc, slow_sandbox, 10)
        seen = cases_on(slow_sandbox)
        time.sleep(LATER_WITHIN + 0.5)  # what the server had is recorded by now
        report = json.loads(invoke("status", str(manifest), "--json").stdout)
        text = invoke("status", str(manifest)).stdout
        out = tmp_path / "live_cases.csv"
        exported = invoke("export", str(manifest), "--out", str(out))
        after = cases_on(slow_sandbox)
        assert proc.poll() is None, "the run ended too soon to be seen in progress"
    finally:
        _, stderr = finish(proc)
    assert proc.returncode == 0, stderr
    live = report["in_progress"]
    assert (live["run"], live["command"], live["pid"], live["concurrency"]) == (
        1, "run", proc.pid, CONCURRENCY)
    create = report["steps"]["create"]
    assert seen <= create["succeeded"] <= after
    assert create.get("unknown", 0) == 0 and create.get("failed", 0) == 0
    assert sum(create.values()) == FAMILIES
    sending = create.get("sending", 0)
    meaning = ("in flight" if sending <= CONCURRENCY
               else f"up to {CONCURRENCY} in flight, the others next in line")
    head = (rf"In progress: run 1 \(run, pid {proc.pid}\) since \S+: create "
            rf"(pending \d+, )?sending {sending} \({meaning}\), succeeded {create['succeeded']}$")
    assert re.match(head, text.splitlines()[2]), text  # after Families and Server
    assert "  ended: not yet: in progress" in text.splitlines()
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == FAMILIES
    for row in rows:
        assert row["Create"] in ("pending", "sending", "succeeded")
        assert "interrupted" not in row["Last Error"] and "unknown" not in row["Last Error"]
        if row["Create"] == "sending":
            assert row["Last Error"] == "the case creation is in progress (the run is going on)"
    ended = json.loads(invoke("status", str(manifest), "--json").stdout)
    assert ended["in_progress"] is None
    assert ended["steps"]["create"] == {"succeeded": FAMILIES}


def test_a_ledger_deleted_during_a_run_is_said(tmp_path: Path, slow_sandbox: str) -> None:
    """The ledger's file removed while the run writes it: the run ends with a plain warning,
    and no ``ledger:`` line names a file that is gone."""
    manifest = write_manifest(tmp_path / "gone.csv", 20, prefix="GONE")
    ledger = tmp_path / "gone.ledger.sqlite"
    proc = start_run(manifest, slow_sandbox)
    try:
        wait_for_cases(proc, slow_sandbox, 2)
        ledger.unlink()
    finally:
        _, stderr = finish(proc)
    assert proc.returncode == 0, stderr
    lines = stderr.splitlines()
    assert not any(line.startswith("ledger:") for line in lines), stderr
    assert lines[-1] == (f"warning: the ledger {ledger} was deleted during the run: what this "
                         "run did is not recorded anywhere now; rerun with --if-exists adopt "
                         "to take the cases it created back from the server")
    assert not ledger.exists()
