"""A revert killed with SIGKILL mid-way resumes on rerun: every case of the run ends in the
trash, each moved by one request (the sandbox's own counts), and the ledger agrees."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from batch.ledger import default_path
from batch.sandbox import SandboxConfig, SandboxThread, demo_fixture_path
from tests.cli_sandbox import api_requests
from tests.manifests import write_manifest
from tests.test_crash import cli_env, sandbox_cases

pytestmark = pytest.mark.slow


def start_revert(manifest: Path, url: str, *extra: str) -> subprocess.Popen[bytes]:
    """`python -m batch revert --yes` as a separate process."""
    return subprocess.Popen(
        [sys.executable, "-m", "batch", "revert", str(manifest), "--host", url, "--yes",
         "--quiet", *extra], env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def reverts(ledger: Path) -> dict[str, int]:
    """``{state: count}`` of the revert steps, read by another process."""
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1) as conn:
            rows = conn.execute("SELECT state, count(*) FROM steps WHERE step = 'revert'"
                                " GROUP BY state").fetchall()
    except sqlite3.Error:
        return {}
    return {str(state): int(n) for state, n in rows}


def post(url: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(url, method="POST", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def test_a_revert_killed_mid_way_resumes_and_sends_nothing_twice(tmp_path: Path) -> None:
    families = 60
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path())) as sandbox:
        manifest = write_manifest(tmp_path / "wrong.csv", families)
        imported = subprocess.run(
            [sys.executable, "-m", "batch", "run", str(manifest), "--host", sandbox.url, "-q"],
            env=cli_env(), capture_output=True, timeout=120)
        assert imported.returncode == 0, imported.stderr.decode()
        post(f"{sandbox.url}/_sandbox/faults", {"latency_ms": 60})
        ledger = default_path(manifest)
        proc = start_revert(manifest, sandbox.url, "--concurrency", "4")
        deadline = time.monotonic() + 60
        while reverts(ledger).get("succeeded", 0) < 10:
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "no progress in time"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        left = reverts(ledger)
        assert 10 <= left.get("succeeded", 0) < families, left
        time.sleep(0.3)  # requests the killed process left in flight are answered
        rerun = start_revert(manifest, sandbox.url, "--concurrency", "8")
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err.decode()
        assert reverts(ledger) == {"succeeded": families}
        assert {c["status"] for c in sandbox_cases(sandbox.url)} == {"trash"}
        puts = api_requests(sandbox)["PUT /api/test/{case}"]
        assert puts == {"200": families}  # each case moved by one request, none sent twice
        again = start_revert(manifest, sandbox.url)
        _, err = again.communicate(timeout=60)
        assert again.returncode == 0, err.decode()
        assert api_requests(sandbox)["PUT /api/test/{case}"] == {"200": families}
