"""Benchmark: what a user plans with, families a second at a tenant's rate limit.

A sandbox in its own process with ``--rate-limit R`` and ``--latency-ms 50``; 200 new families
of three. For each R, in one script run, each contender a whole ``emg-batch run`` process
against a fresh sandbox:

* first import, default (the duplicate guard: one sample look-up per family before its create);
* first import, ``--if-exists create`` (no look-up);
* rerun of the default import after it finished (nothing to send; what a resume costs).

Each first import runs with ``--rate R`` (what a user who knows the limit sets) and adaptive
(no ``--rate``). Families a second are divided by R: the guard's ceiling is R/2 (two requests a
family), ``--if-exists create``'s is R.

Run: ``python tests/benchmarks/bench_first_import.py [--families 200] [--rates 10,20,50]``.
Prints a table and writes ``tests/benchmarks/results/bench_first_import.json``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from bench_run import run_cli
from common import Sandbox, make_manifest, print_table, write_json

COLUMNS = ["rate_limit", "contender", "families", "seconds", "families_per_s", "share_of_r",
           "requests_per_family", "429s"]
LATENCY_MS = 50.0


def contender(work: Path, families: int, rate: float, name: str, *extra: str,
              rerun: bool = False) -> dict[str, Any]:
    """One contender against a fresh sandbox and fresh files; its table row."""
    manifest = make_manifest(work / f"{name.replace(' ', '_')}_{rate:g}", families)
    with Sandbox(rate_limit=rate, latency_ms=LATENCY_MS) as server:
        measured = run_cli(server, manifest, *extra)
        if rerun:
            before = server.stats()["requests"]
            measured = run_cli(server, manifest, *extra)
            requests = server.stats()["requests"] - before
        else:
            requests = server.stats()["requests"]
    seconds = measured["elapsed_s"]
    return {"rate_limit": rate, "contender": name, "families": families,
            "seconds": round(seconds, 2), "families_per_s": round(families / seconds, 2),
            "share_of_r": round(families / seconds / rate, 3),
            "requests_per_family": round(requests / families, 2),
            "429s": measured["client_429"]}


def main() -> None:
    """Every contender at every rate; the table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=int, default=200)
    parser.add_argument("--rates", default="10,20,50")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for rate in (float(r) for r in args.rates.split(",")):
            fixed = ("--rate", f"{rate:g}")
            for name, extra, rerun in (
                ("guard, --rate R", fixed, False),
                ("guard, adaptive", (), False),
                ("--if-exists create, --rate R", (*fixed, "--if-exists", "create"), False),
                ("--if-exists create, adaptive", ("--if-exists", "create"), False),
                ("rerun after the import, --rate R", fixed, True),
            ):
                print(f"R={rate:g}: {name} ...", flush=True)
                rows.append(contender(work, args.families, rate, name, *extra, rerun=rerun))
    print_table(rows, COLUMNS, title=f"{args.families} new families of three at {LATENCY_MS:g} "
                                     "ms; seconds: the run, from start-up to the last answer")
    write_json("bench_first_import", {"rows": rows, "families": args.families,
                                      "latency_ms": LATENCY_MS})


if __name__ == "__main__":
    main()
