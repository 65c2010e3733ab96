"""Every fault at once over a few hundred families: clocks off by minutes in both directions,
lost answers, 429s, 5xx, tokens that expire in seconds and SIGKILLs mid-run. Checked against the
sandbox's own record: one case per family, no case claimed by two families, nothing lost, and
the results file equal to the server."""

from __future__ import annotations

import csv
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from batch.ledger import default_path
from batch.sandbox import SandboxConfig, SandboxThread, demo_fixture_path
from tests.clocks import clock_env, needs_faketime
from tests.manifests import write_manifest
from tests.test_crash import (
    check_one_case_per_family,
    cli_env,
    ledger_rows,
    sandbox_cases,
    wait_for_progress,
)

pytestmark = pytest.mark.slow

FAMILIES = 300
#: The client's clock in each run, from the true time: ahead, behind, ahead, true...
OFFSETS = ("+420s", "-300s", "+600s", "-540s", "+0s", "-120s")


def start(manifest: Path, url: str, offset: str) -> subprocess.Popen[bytes]:
    """``emg-batch run`` as a process whose clock is *offset* from the sandbox's."""
    command = [sys.executable, "-m", "batch", "run", str(manifest), "--host", url, "--quiet",
               "--concurrency", "16"]
    return subprocess.Popen(command, env=clock_env(cli_env(), offset), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def results_by_family(path: Path) -> dict[str, set[str]]:
    """Family Id -> the Case Ids its rows carry in the results file."""
    with path.open(encoding="utf-8", newline="") as handle:
        lines = handle.read().splitlines()
    start_at = 1 if lines and lines[0].startswith("[Data]") else 0
    found: dict[str, set[str]] = {}
    for row in csv.DictReader(lines[start_at:]):
        found.setdefault(row["Family Id"], set()).update({row["Case Id"]} - {""})
    return found


@needs_faketime
def test_every_fault_at_once_never_duplicates_misassigns_or_loses(tmp_path: Path) -> None:
    config = SandboxConfig(fixture=demo_fixture_path(), drop_after_commit=0.1, error_rate=0.1,
                           rate_limit=150, latency_ms=15, token_ttl=3, seed=19)
    rng = random.Random(20261206)
    with SandboxThread(config) as sandbox:
        manifest = write_manifest(tmp_path / "chaos.csv", FAMILIES)
        ledger = default_path(manifest)
        kills = 0
        offsets = iter(OFFSETS)
        for threshold in sorted(rng.sample(range(30, FAMILIES - 60), 4)):
            proc = start(manifest, sandbox.url, next(offsets, "+0s"))
            if wait_for_progress(proc, ledger, threshold, timeout=120):
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=120)
        assert kills >= 3
        for attempt in range(8):
            proc = start(manifest, sandbox.url, OFFSETS[attempt % len(OFFSETS)])
            _, err = proc.communicate(timeout=240)
            if proc.returncode == 0:
                break
            assert proc.returncode == 1, err.decode()
        assert proc.returncode == 0, err.decode()
        cases = sandbox_cases(sandbox.url)
    check_one_case_per_family(cases, ledger, FAMILIES)
    names = [case for _, _, case in ledger_rows(ledger)]
    assert len(names) == len(set(names)), "a case is claimed by two families"
    server = {c["proband_sample"]: c["name"] for c in cases}
    results = results_by_family(manifest.with_name("chaos_results.csv"))
    assert len(results) == FAMILIES
    for family_id, case_ids in results.items():
        assert case_ids == {server[f"{family_id}-S0"]}, family_id
