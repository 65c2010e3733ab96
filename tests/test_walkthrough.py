"""The README walk-through, run as a user would: a sandbox process and `emg-batch` commands."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sandbox_process() -> Iterator[str]:
    """`emg-batch sandbox --port 0 --advance-after 0` in its own process; yields its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "batch", "sandbox", "--port", "0", "--advance-after", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
    assert match, line
    try:
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def emg(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    """Run `emg-batch` with the walk-through's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMG_")}
    env.update(EMG_HOST=url, EMG_USERNAME=DEFAULT_USER, EMG_PASSWORD=DEFAULT_PASSWORD)
    return subprocess.run([sys.executable, "-m", "batch", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def done_line(stderr: str) -> str:
    """The summary's first line (progress lines may come before it)."""
    return next(line for line in stderr.splitlines() if line.startswith("done: "))


@pytest.mark.slow
def test_readme_walkthrough(tmp_path: Path, sandbox_process: str) -> None:
    """Import, one failure, review it, fix the manifest, rerun: nothing is created twice."""
    manifest = tmp_path / "import.csv"
    shutil.copy(ROOT / "inputs" / "walkthrough.csv", manifest)

    first = emg("run", str(manifest), url=sandbox_process)
    assert first.returncode == 1, first.stderr
    assert first.stdout == ""  # the summary is for people: stderr
    # the run itself says why the family failed, without `status` or the workbook
    summary = first.stderr[first.stderr.index("done: "):]
    assert re.sub(r"elapsed \d+\.\ds", "elapsed Xs", summary).splitlines() == [
        "done: 3 families: created 3, adopted 0, updated 1, skipped 0, failed 1, unknown 0",
        "updated: 1 assignment",
        "failures by reason, most frequent first:",
        "  1 x the assignment was not sent: unknown user e-mail(s): genetcist@example.com "
        "(family WT-002)",
        "requests 10, retries 0, 429s 0, elapsed Xs",
        f"results: {tmp_path / 'import_results.csv'}",
        f"review: {tmp_path / 'import_review.xlsx'}",
        f"ledger: {tmp_path / 'import.ledger.sqlite'}",
        "hint: fix what failed and rerun the same command; created cases are never created "
        "again"]

    status = emg("status", str(manifest), url=sandbox_process)
    assert status.returncode == 0
    assert "unknown user e-mail(s): genetcist@example.com" in status.stdout

    book = openpyxl.load_workbook(tmp_path / "import_review.xlsx")
    assert book.sheetnames[:2] == ["Summary", "Failed"]
    assert book["Summary"]["A1"].value == (
        "2 of 3 families are done; 1 needs action: 1 failed (listed below). This run created "
        "3 cases.")
    assert [c.value for c in book["Summary"][5]] == [
        "WT-002", "Failed, row 2",
        "the assignment was not sent: unknown user e-mail(s): genetcist@example.com",
        "Correct the e-mail in Assign To (no such user in the organization), then rerun the "
        "same command."]
    failed = list(book["Failed"].iter_rows(values_only=True))
    assert failed[0][0] == "Errors"
    assert "genetcist@example.com" in str(failed[1][0])
    assert "WT-002" in failed[1]

    text = manifest.read_text(encoding="utf-8").replace("genetcist@", "geneticist@")
    manifest.write_text(text, encoding="utf-8")
    second = emg("run", str(manifest), url=sandbox_process)
    assert second.returncode == 0, second.stderr
    assert done_line(second.stderr) == (
        "done: 3 families: created 0, adopted 0, updated 1, skipped 2, failed 0, unknown 0")
    results = (tmp_path / "import_results.csv").read_text(encoding="utf-8").splitlines()
    assert results[1].startswith("Case Id,Family Id,")
    assert sum(1 for line in results[2:] if line.startswith("EMG")) == 3
