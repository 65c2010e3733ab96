"""Exit 3 (stopped early) where the documentation says so: a server that does not answer
``validate --server``, a ledger whose disk refuses writes; and ``--sandbox`` winning over
``EMG_HOST`` (exit 0, with a note) while ``--host`` with ``--sandbox`` stays a usage error."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batch.cli import main

ROOT = Path(__file__).resolve().parents[1]
HINT = ("Hint: check the host (--host or EMG_HOST) and that the server answers (emg-batch "
        "doctor), then rerun the same command")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def invoke(*args: str, **env: str) -> Result:
    base = {"EMG_HOST": "", "EMG_TOKEN": "", "EMG_USERNAME": "a@example.com",
            "EMG_PASSWORD": "x"}
    return CliRunner().invoke(main, list(args), env={**base, **env}, catch_exceptions=False)


@pytest.mark.slow
def test_validate_server_without_a_server_exits_3(tmp_path: Path) -> None:
    manifest = shutil.copy(ROOT / "inputs" / "example.csv", tmp_path / "m.csv")
    result = invoke("validate", str(manifest), "--server",
                    EMG_HOST=f"http://127.0.0.1:{closed_port()}")
    assert result.exit_code == 3
    error, hint = result.stderr.splitlines()
    assert re.fullmatch(r"Error: the server did not answer \(gave up after retries: cannot "
                        r"connect to the server: .*\); nothing was checked on it", error), error
    assert hint == HINT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]


def _small_files() -> None:
    """Files of this process may not grow past 8 KB (a disk that is full, for SQLite)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))


def test_a_ledger_on_a_full_disk_exits_3(tmp_path: Path) -> None:
    manifest = shutil.copy(ROOT / "inputs" / "example.csv", tmp_path / "m.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMG_")}
    done = subprocess.run([sys.executable, "-m", "batch", "run", str(manifest), "--sandbox"],
                          preexec_fn=_small_files, capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [
        f"Error: cannot open ledger {tmp_path / 'm.sandbox.ledger.sqlite'}: disk I/O error",
        "Hint: free space or fix permissions, then rerun the same command"]


def test_sandbox_wins_over_the_environment(tmp_path: Path) -> None:
    manifest = shutil.copy(ROOT / "inputs" / "example.csv", tmp_path / "m.csv")
    result = invoke("run", str(manifest), "--sandbox", EMG_HOST="https://lab.emg.invalid")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "note: --sandbox: EMG_HOST (https://lab.emg.invalid) is not used"
    assert lines[1].startswith("done: 4 families: created 4")
    quiet = invoke("run", str(manifest), "--sandbox", "-q", EMG_HOST="https://lab.emg.invalid")
    assert (quiet.exit_code, quiet.stderr) == (0, "")


def test_host_and_sandbox_typed_together_exclude_each_other(tmp_path: Path) -> None:
    manifest = shutil.copy(ROOT / "inputs" / "example.csv", tmp_path / "m.csv")
    result = invoke("run", str(manifest), "--sandbox", "--host", "https://lab.emg.invalid")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: --host and --sandbox exclude each other")
