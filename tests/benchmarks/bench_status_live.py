"""Benchmark: how true ``status`` is in the middle of a run.

A sandbox in its own process (``--latency-ms 150``) and an ``emg-batch run`` process on a
manifest of N families (default concurrency). Once the server holds ``--at`` cases, the
script notes how many it holds, waits 1.5 s, reads ``status --json`` and the server's count
again: every case the server held before should be counted ``succeeded``, and none beyond what
it holds after.

Run: ``python tests/benchmarks/bench_status_live.py [--families 320] [--at 150]``.
Prints one line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.cli_sandbox import invoke
from tests.manifests import write_manifest


def cases(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_sandbox/cases", timeout=10) as answer:
        return int(json.load(answer)["total"])


def measure(folder: Path, families: int, at: int) -> str:
    sandbox = subprocess.Popen([sys.executable, "-m", "batch", "sandbox", "--port", "0",
                                "--latency-ms", "150"], stdout=subprocess.PIPE, text=True)
    try:
        assert sandbox.stdout is not None
        url = next(w for w in sandbox.stdout.readline().split() if w.startswith("http://"))
        manifest = write_manifest(folder / "m.csv", families, prefix="M")
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMG_")}
        env.update(EMG_USERNAME="sandbox@example.com", EMG_PASSWORD="sandbox", EMG_HOST=url)
        run = subprocess.Popen([sys.executable, "-m", "batch", "run", str(manifest), "--quiet"],
                               env=env)
        while cases(url) < at:
            time.sleep(0.05)
        seen = cases(url)
        time.sleep(1.5)
        report = json.loads(invoke("status", str(manifest), "--json").stdout)
        after = cases(url)
        run.wait()
        return (f"server held {seen}, then {after}; status: create {report['steps']['create']},"
                f" in progress: {report.get('in_progress') is not None}")
    finally:
        sandbox.terminate()
        sandbox.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--families", type=int, default=320)
    parser.add_argument("--at", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(measure(Path(folder), args.families, args.at))


if __name__ == "__main__":
    main()
