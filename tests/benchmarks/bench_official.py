"""Benchmark: ``emg-batch run`` with default options against the official CLI's way, at 100 ms.

A sandbox with ``--latency-ms 100`` and no rate limit (a fresh one per contender, in its own
process), 200 families of three. Contenders, in one script run:

* ``emg-batch run`` with default options: the look-up of each family's case before its first
  create (``GET /api/sample``, plus ``GET /api/test/{case}/`` per case found), then the create;
* ``emg-batch run --if-exists create``: no look-ups (what the look-ups cost);
* the official CLI's way: per family a server dry run, then the create, one family at a time
  (urllib, the bodies ``emg-batch`` builds).

``emg-batch`` is timed as a whole process (start-up, reading, validation, ledger, results CSV
and review workbook included). Target: default ``emg-batch`` >= 10x the official CLI's way.

Run: ``python tests/benchmarks/bench_official.py [--families 200] [--latency-ms 100]``.
Prints a table and writes ``tests/benchmarks/results/bench_official.json``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from bench_run import run_cli, sequential
from common import Sandbox, build_payloads, make_manifest, print_table, write_json

COLUMNS = ["contender", "families", "created", "seconds", "creates_per_s", "requests",
           "requests_per_family", "x_official"]


def contender(name: str, families: int, work: Path, latency_ms: float) -> dict[str, Any]:
    """One contender against a fresh sandbox and fresh files; its table row."""
    manifest = make_manifest(work / name.replace(" ", "_").replace("-", ""), families)
    with Sandbox(latency_ms=latency_ms) as server:
        if name.startswith("emg-batch"):
            extra = ("--if-exists", "create") if "--if-exists" in name else ()
            seconds = run_cli(server, manifest, *extra)["wall_s"]
        else:
            seconds = sequential(server.url, build_payloads(manifest))["elapsed_s"]
        stats = server.stats()
    return {"contender": name, "families": families, "created": stats["created"],
            "seconds": seconds, "creates_per_s": stats["created"] / seconds,
            "requests": stats["requests"], "requests_per_family": stats["requests"] / families,
            "routes": stats["routes"]}


def main() -> None:
    """Run the three contenders and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    names = ["emg-batch run (default)", "emg-batch run --if-exists create",
             "official CLI's way (dry run + create, sequential)"]
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for name in names:
            print(f"{name} ...", flush=True)
            rows.append(contender(name, args.families, Path(tmp), args.latency_ms))
    official = rows[-1]["creates_per_s"]
    for row in rows:
        row["x_official"] = row["creates_per_s"] / official
    print_table(rows, COLUMNS, title=f"{args.families} families at {args.latency_ms:g} ms, "
                                     "no rate limit (seconds: the whole process)")
    default, bare = rows[0], rows[1]
    cost = {"extra_requests_per_family": default["requests_per_family"]
            - bare["requests_per_family"],
            "extra_seconds": default["seconds"] - bare["seconds"],
            "met_10x": default["x_official"] >= 10}
    print(f"look-ups cost {cost['extra_requests_per_family']:.2f} requests per family and "
          f"{cost['extra_seconds']:.1f} s here; default emg-batch is "
          f"{default['x_official']:.1f}x the official CLI's way (target >= 10x: "
          f"{'met' if cost['met_10x'] else 'NOT met'})")
    write_json("bench_official", {"rows": rows, "look_up_cost": cost,
                                  "families": args.families, "latency_ms": args.latency_ms})


if __name__ == "__main__":
    main()
