"""Benchmark: a 10 s outage (503 to everything) in the middle of an ``emg-batch run``.

A sandbox with ``--latency-ms 150 --rate-limit 20`` (its own process, a fresh one per mode) and
900 families. Once ``--outage-after`` cases exist, ``POST /_sandbox/faults
{"outage_seconds": 10}`` turns every answer into a 503 for 10 s. The parent samples
``/_sandbox/stats`` every 0.25 s while the run goes on, then reports:

* the steady create rate before the outage;
* recovery: seconds from the end of the outage until the create rate over the next 2 s is back
  to 90 % of that steady rate;
* extra requests: everything the server answered beyond one create per family plus the login
  and storage look-up, split into 503s and 429s; families the run could not finish;
* what finishing them costs: the same command run again (the resume), its requests and time.

Run: ``python tests/benchmarks/bench_recovery.py [--families 900]
[--outage-after 250] [--outage 10] [--modes rate adaptive]``.
Prints a table and writes ``tests/benchmarks/results/bench_recovery.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import Sandbox, cli_env, emg_batch, make_manifest, print_table, run_measured, write_json

LATENCY_MS = 150.0
LIMIT = 20.0
SAMPLE_S = 0.25
WINDOW_S = 2.0
COLUMNS = ["mode", "families", "steady_per_s", "recovery_s", "extra_requests", "503s", "429s",
           "failed", "unknown", "run_s", "resume_requests", "resume_s", "created_total"]


class Sampler(threading.Thread):
    """Samples the sandbox's counters; starts the outage once enough cases exist."""

    def __init__(self, sandbox: Sandbox, *, outage_after: int, outage: float) -> None:
        super().__init__(daemon=True)
        self.sandbox = sandbox
        self.outage_after = outage_after
        self.outage = outage
        self.samples: list[tuple[float, int, int]] = []  # (t, created, requests)
        self.outage_start: float | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        """Sample until told to stop (the run's own timeout bounds it)."""
        while not self.halt.is_set():
            stats = self.sandbox.stats()
            now = time.monotonic()
            self.samples.append((now, stats["created"], stats["requests"]))
            if self.outage_start is None and stats["created"] >= self.outage_after:
                self.sandbox.post("/_sandbox/faults", {"outage_seconds": self.outage})
                self.outage_start = time.monotonic()
            self.halt.wait(SAMPLE_S)


def _created_at(samples: list[tuple[float, int, int]], when: float) -> float:
    """Cases created by time *when* (linear between samples)."""
    prev = samples[0]
    for sample in samples:
        if sample[0] >= when:
            span = sample[0] - prev[0]
            share = (when - prev[0]) / span if span > 0 else 1.0
            return prev[1] + (sample[1] - prev[1]) * share
        prev = sample
    return float(samples[-1][1])


def analyse(sampler: Sampler, outage: float) -> dict[str, Any]:
    """Steady rate before the outage and how long after it the rate is back to 90 %."""
    samples = sampler.samples
    start = sampler.outage_start
    if start is None or len(samples) < 4:
        return {"steady_per_s": None, "recovery_s": None, "note": "the outage never started"}
    first = next(t for t, created, _ in samples if created > 0)
    begin = first + WINDOW_S  # skip the start-up burst of the server's full token bucket
    steady = (_created_at(samples, start) - _created_at(samples, begin)) / max(start - begin, 1e-9)
    end = start + outage
    last = samples[-1][0]
    t = end
    while t + WINDOW_S <= last:
        rate = (_created_at(samples, t + WINDOW_S) - _created_at(samples, t)) / WINDOW_S
        if rate >= 0.9 * steady:
            return {"steady_per_s": steady, "recovery_s": t - end}
        t += SAMPLE_S / 2
    return {"steady_per_s": steady, "recovery_s": None,
            "note": "throughput did not reach 90 % again before the run ended"}


def one_mode(mode: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One run with an outage, then the resume, against a fresh sandbox."""
    manifest = make_manifest(work / mode, args.families, prefix="REC")
    extra = ["--rate", f"{LIMIT:g}"] if mode == "rate" else []
    cmd = emg_batch("run", str(manifest), "--host", "", "--quiet", "--json", *extra)
    with Sandbox(latency_ms=LATENCY_MS, rate_limit=LIMIT) as sandbox:
        cmd[cmd.index("--host") + 1] = sandbox.url
        sampler = Sampler(sandbox, outage_after=args.outage_after, outage=args.outage)
        sampler.start()
        first = run_measured(cmd, env=cli_env(), cwd=manifest.parent, timeout=900)
        sampler.halt.set()
        sampler.join()
        after_run = sandbox.stats()
        second = run_measured(cmd, env=cli_env(), cwd=manifest.parent, timeout=900)
        after_resume = sandbox.stats()
    summary = json.loads(first.stdout) if first.stdout.strip() else {}
    resumed = json.loads(second.stdout) if second.stdout.strip() else {}
    row: dict[str, Any] = {"mode": "--rate 20" if mode == "rate" else "adaptive",
                           "families": args.families, **analyse(sampler, args.outage)}
    necessary = after_run["created"] + 2  # one create per case, the login, the storage look-up
    row.update({
        "extra_requests": after_run["requests"] - necessary,
        "503s": after_run["503"], "429s": after_run["429"],
        "failed": summary.get("failed"), "unknown": summary.get("unknown"),
        "client_retries": summary.get("retries"), "run_s": first.wall_s,
        "resume_requests": after_resume["requests"] - after_run["requests"],
        "resume_s": second.wall_s, "resume_created": resumed.get("created"),
        "created_total": after_resume["created"], "exit_codes": [first.code, second.code],
        "samples": [(round(t - sampler.samples[0][0], 2), c, r) for t, c, r in sampler.samples],
    })
    if sampler.outage_start is not None:
        row["outage_at_s"] = round(sampler.outage_start - sampler.samples[0][0], 2)
    return row


def main() -> int:
    """Run each mode; print a table; write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=900)
    parser.add_argument("--outage-after", type=int, default=250,
                        help="start the outage once this many cases exist")
    parser.add_argument("--outage", type=float, default=10.0, help="outage length, seconds")
    parser.add_argument("--modes", nargs="+", choices=("rate", "adaptive"),
                        default=["rate", "adaptive"])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_recovery-") as tmp:
        for mode in args.modes:
            print(f"recovery: {mode} ...", flush=True)
            rows.append(one_mode(mode, args, Path(tmp)))
    print_table(rows, COLUMNS, title=f"Recovery: {args.outage:g} s of 503 after "
                f"{args.outage_after} cases; sandbox {LATENCY_MS:g} ms, {LIMIT:g} req/s")
    write_json("bench_recovery", {"latency_ms": LATENCY_MS, "limit": LIMIT,
                                  "outage_s": args.outage, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
