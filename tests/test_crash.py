"""Crash safety, tested: SIGKILL and SIGINT of a real `emg-batch run` process mid-run."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch.ledger import default_path
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    SandboxThread,
    demo_fixture_path,
)
from tests.manifests import write_manifest

pytestmark = pytest.mark.slow


def cli_env() -> dict[str, str]:
    """The environment of a CLI process: sandbox credentials, no token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMG_")}
    env.update(EMG_USERNAME=DEFAULT_USER, EMG_PASSWORD=DEFAULT_PASSWORD, PYTHONUNBUFFERED="1")
    return env


def start_run(manifest: Path, url: str, *extra: str) -> subprocess.Popen[bytes]:
    """Start `python -m batch run` as a separate process."""
    return subprocess.Popen(
        [sys.executable, "-m", "batch", "run", str(manifest), "--host", url, "--quiet", *extra],
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def succeeded_steps(ledger: Path) -> int:
    """Succeeded steps in the ledger, read by another process (0 before it exists)."""
    if not ledger.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM steps WHERE state = 'succeeded'")
                       .fetchone()[0])
    except sqlite3.Error:
        return 0


def wait_for_progress(proc: subprocess.Popen[bytes], ledger: Path, at_least: int,
                      timeout: float = 60.0) -> bool:
    """Wait until *at_least* steps succeeded; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if succeeded_steps(ledger) >= at_least:
            return True
        time.sleep(0.02)
    raise AssertionError("no progress in time")


def sandbox_cases(url: str) -> list[dict[str, Any]]:
    """Every case the sandbox holds."""
    with urllib.request.urlopen(f"{url}/_sandbox/cases", timeout=10) as resp:
        return list(json.load(resp)["hits"])


def ledger_rows(ledger: Path) -> list[tuple[str, str, str | None]]:
    """(family, state of create, case name) for every family."""
    with sqlite3.connect(ledger) as conn:
        return conn.execute(
            "SELECT f.family_id, s.state, f.case_name FROM families f"
            " JOIN steps s ON s.family_id = f.family_id AND s.step = 'create'"
        ).fetchall()


def assert_one_case_per_family(url: str, ledger: Path, families: int) -> None:
    """Exactly one case per family on the server, and the ledger agrees with it."""
    check_one_case_per_family(sandbox_cases(url), ledger, families)


def check_one_case_per_family(cases: list[dict[str, Any]], ledger: Path, families: int) -> None:
    """Exactly one case per family in *cases*, and the ledger agrees with them."""
    samples = [c["proband_sample"] for c in cases]
    assert len(samples) == len(set(samples)), "a family was created twice"
    assert len(cases) == families, "a family was lost"
    rows = ledger_rows(ledger)
    assert len(rows) == families
    assert {state for _, state, _ in rows} == {"succeeded"}
    by_sample = {c["proband_sample"]: c["name"] for c in cases}
    for family_id, _, case_name in rows:
        assert by_sample[f"{family_id}-S0"] == case_name


@pytest.fixture
def faulty_sandbox() -> Iterator[str]:
    """A sandbox that drops answers after commit, fails some requests and is slow."""
    config = SandboxConfig(fixture=demo_fixture_path(), drop_after_commit=0.05, error_rate=0.05,
                           latency_ms=40, seed=7)
    with SandboxThread(config) as sandbox:
        yield sandbox.url


def test_sigkill_at_random_moments_never_duplicates_or_loses(
    tmp_path: Path, faulty_sandbox: str
) -> None:
    """Killed with SIGKILL three times mid-run, reruns end with one case per family."""
    families = 240
    manifest = write_manifest(tmp_path / "chaos.csv", families)
    ledger = default_path(manifest)
    rng = random.Random(20261128)
    kills = 0
    for threshold in sorted(rng.sample(range(20, families - 40), 3)):
        proc = start_run(manifest, faulty_sandbox, "--concurrency", "16")
        if wait_for_progress(proc, ledger, threshold):
            time.sleep(rng.uniform(0, 0.05))
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 2
    for _ in range(6):
        proc = start_run(manifest, faulty_sandbox, "--concurrency", "16")
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            break
        assert proc.returncode == 1, err.decode()
    assert proc.returncode == 0, err.decode()
    assert_one_case_per_family(faulty_sandbox, ledger, families)


def test_sigint_leaves_a_consistent_ledger_and_exits_130(tmp_path: Path) -> None:
    """Ctrl-C stops taking families, lets requests in flight finish, exits 130; rerun completes."""
    config = SandboxConfig(fixture=demo_fixture_path(), latency_ms=60)
    with SandboxThread(config) as sandbox:
        families = 150
        manifest = write_manifest(tmp_path / "int.csv", families)
        ledger = default_path(manifest)
        proc = start_run(manifest, sandbox.url, "--concurrency", "4")
        assert wait_for_progress(proc, ledger, 10)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err.decode()
        states = {state for _, state, _ in ledger_rows(ledger)}
        assert "sending" not in states
        assert len(sandbox_cases(sandbox.url)) < families
        proc = start_run(manifest, sandbox.url, "--concurrency", "8")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert_one_case_per_family(sandbox.url, ledger, families)
