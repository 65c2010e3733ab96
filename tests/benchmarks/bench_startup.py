"""Benchmark: how long the light commands take as whole processes, beside ``python -c pass``.

Run: ``python tests/benchmarks/bench_startup.py [--rounds N] [--against TREE]``.
Measures ``emg-batch --help``, ``status``, ``template`` and ``validate`` of the 4-family
example (``inputs/example.csv``, copied to a temporary folder and run once against the
sandbox first, so that ``status`` has a ledger to read), each the median of N rounds, and
``python -c pass`` in the same rounds as the baseline (the interpreter's own start-up). Rounds
interleave the commands, so a busy machine slows every command alike. The target: each
command under 0.25 s. With ``--against TREE`` (a folder holding another ``batch`` package,
e.g. ``git archive main batch | tar -x -C TREE``) the same commands run from that tree too.
Writes ``tests/benchmarks/results/bench_startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RESULTS = HERE / "results"
TARGET_S = 0.25


def commands(folder: Path) -> dict[str, list[str]]:
    """The light commands, as ``emg-batch`` arguments, on the example in *folder*."""
    manifest = str(folder / "example.csv")
    return {
        "--help": ["--help"],
        "status": ["status", manifest],
        "template": ["template", "--out-dir", str(folder / "templates")],
        "validate": ["validate", manifest],
    }


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)  # this tree's (or the other tree's) batch comes first
    env.pop("EMG_HOST", None)
    return env


def _once(cmd: list[str], env: dict[str, str], folder: Path) -> float:
    if (folder / "templates").exists():  # template refuses to overwrite: clear it each round
        shutil.rmtree(folder / "templates")
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=folder, capture_output=True, timeout=120)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{cmd} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return took


def _prepare(folder: Path) -> None:
    """The example, and a ledger beside it from one sandbox run (for ``status``)."""
    shutil.copy(REPO / "inputs" / "example.csv", folder / "example.csv")
    subprocess.run([sys.executable, "-m", "batch", "run", "example.csv", "--sandbox", "-q",
                    "--ledger", "example.ledger.sqlite"], cwd=folder, env=_env(REPO),
                   check=True, capture_output=True, timeout=300)


def measure(folder: Path, trees: dict[str, Path], rounds: int) -> dict[str, list[float]]:
    """Seconds per round of the baseline and of each command from each tree."""
    runs: dict[str, tuple[list[str], dict[str, str]]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], _env(REPO))}
    for name, tree in trees.items():
        for label, args in commands(folder).items():
            key = label if name == "this" else f"{label} ({name})"
            runs[key] = ([sys.executable, "-m", "batch", *args], _env(tree))
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(rounds):
        for key, (cmd, env) in runs.items():
            times[key].append(_once(cmd, env, folder))
    return times


def main() -> None:
    """Prepare the example, measure every command, print and write the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--against", type=Path)
    args = parser.parse_args()
    trees = {"this": REPO, **({"other": args.against.resolve()} if args.against else {})}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _prepare(folder)
        times = measure(folder, trees, args.rounds)
    base = statistics.median(times["python -c pass"])
    rows = []
    print(f"{'command':24} {'median s':>9} {'x python':>9} {'over python s':>14}  target")
    for key, values in times.items():
        median = statistics.median(values)
        ok = "" if key.startswith("python") else ("ok" if median < TARGET_S else "MISSED")
        rows.append({"command": key, "median_s": median, "ratio": median / base,
                     "over_python_s": median - base, "rounds": values, "target_met": ok})
        print(f"{key:24} {median:9.3f} {median / base:9.1f} {median - base:14.3f}  {ok}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench_startup.json"
    out.write_text(json.dumps({"target_s": TARGET_S, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    if any(r["target_met"] == "MISSED" for r in rows if "(" not in str(r["command"])):
        sys.exit(1)


if __name__ == "__main__":
    main()
