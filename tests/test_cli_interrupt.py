"""Ctrl-C in the middle of a run, as a user presses it: a real ``emg-batch run`` process
against a slow sandbox process (``--latency-ms``) gets SIGINT. The summary says
``interrupted:``, not ``done:``, and with nothing failed it does not ask to fix anything."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER
from tests.manifests import write_manifest

pytestmark = pytest.mark.slow

FAMILIES = 40
PROGRESS = re.compile(r"^(validating|running): \d+/\d+ families, ")


def cases_on(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_sandbox/cases", timeout=10) as answer:
        return int(json.load(answer)["total"])


def interrupted_run(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Start a run, wait until two cases exist, press Ctrl-C; what the run printed."""
    manifest = write_manifest(tmp_path / "slow.csv", FAMILIES, prefix="SLOW")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMG_")}
    env.update(EMG_USERNAME=DEFAULT_USER, EMG_PASSWORD=DEFAULT_PASSWORD, EMG_HOST=url)
    proc = subprocess.Popen([sys.executable, "-m", "batch", "run", str(manifest),
                             "--concurrency", "2", *extra], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while cases_on(url) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no case was created"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def masked(text: str, tmp: Path) -> list[str]:
    text = re.sub(r"elapsed \d+\.\ds", "elapsed Xs", text.replace(str(tmp), "TMP"))
    text = re.sub(r"(created|requests) \d+", r"\1 N", text)
    text = re.sub(r"not attempted: \d+ famil(y|ies)", "not attempted: N families", text)
    return [line for line in text.splitlines() if not PROGRESS.match(line)]


SUMMARY = [
    f"interrupted: {FAMILIES} families: created N, adopted 0, updated 0, skipped 0, failed 0, "
    "unknown 0",
    "not attempted: N families (the run stopped before them)",
    "requests N, retries 0, 429s 0, elapsed Xs",
    "results: TMP/slow_results.csv",
    "review: TMP/slow_review.xlsx",
    "ledger: TMP/slow.ledger.sqlite",
    "hint: rerun the same command to resume; created cases are never created again",
]


def test_ctrl_c_says_interrupted(tmp_path: Path, slow_sandbox: str) -> None:
    done = interrupted_run(tmp_path, slow_sandbox)
    assert done.returncode == 130, done.stderr
    assert done.stdout == ""
    assert masked(done.stderr, tmp_path) == [
        "interrupted: finishing requests in flight (Ctrl-C again to cancel them)", *SUMMARY]
    assert "done:" not in done.stderr and "fix what failed" not in done.stderr


def test_ctrl_c_with_quiet_still_gives_the_summary(tmp_path: Path, slow_sandbox: str) -> None:
    done = interrupted_run(tmp_path, slow_sandbox, "-q")
    assert done.returncode == 130, done.stderr
    assert (done.stdout, masked(done.stderr, tmp_path)) == ("", SUMMARY)


def test_ctrl_c_with_json(tmp_path: Path, slow_sandbox: str) -> None:
    done = interrupted_run(tmp_path, slow_sandbox, "--json", "-q")
    assert done.returncode == 130, done.stderr
    data = json.loads(done.stdout)
    assert (data["stopped"], data["exit_code"], data["failed"]) == ("interrupted", 130, 0)
    assert done.stderr == ""


def test_the_hint_fits_what_happened() -> None:
    from batch.outputs import render_summary
    from batch.run import RunSummary

    def last(**fields: object) -> str:
        return render_summary(RunSummary(families=3, ran=True, **fields),  # type: ignore[arg-type]
                              files={}).splitlines()[-1]

    assert last(stopped="interrupted", stop_reason="x") == SUMMARY[-1]
    assert last(stopped="interrupted", unknown=1).startswith("hint: fix what failed")
    assert last(stopped="max-failures", failed=2).startswith("hint: fix what failed")
    assert last(stopped="auth", stop_reason="the server refused the login: no") == (
        "hint: check the credentials (EMG_USERNAME and EMG_PASSWORD, or EMG_TOKEN), then rerun "
        "the same command; created cases are never created again")
    assert last(stopped="ledger", stop_reason="disk full").startswith("hint: free space")
    assert last(failed=1).startswith("hint: fix what failed")
    assert last().startswith("requests 0")  # all done: no hint
    text = render_summary(RunSummary(families=3, ran=True, stopped="max-failures", failed=2,
                                     not_attempted=1,
                                     stop_reason="2 families failed (--max-failures 2)"),
                          files={})
    assert text.splitlines()[:3] == [
        "stopped: 3 families: created 0, adopted 0, updated 0, skipped 0, failed 2, unknown 0",
        "why: 2 families failed (--max-failures 2)",
        "not attempted: 1 family (the run stopped before them)"]


def test_a_stop_before_sending_says_so_and_nothing_else() -> None:
    from batch.outputs import render_summary
    from batch.run import RunSummary

    summary = RunSummary(families=3, stopped="server", stop_reason="the server did not answer")
    assert render_summary(summary, files={"results": None}).splitlines() == [
        "stopped: the server did not answer; nothing was sent",
        "hint: check the host (--host or EMG_HOST) and that the server answers (emg-batch "
        "doctor), then rerun the same command"]
