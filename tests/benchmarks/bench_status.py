"""Benchmark: ``status()`` and exports on a ledger of 100,000 families.

Run: ``python tests/benchmarks/bench_status.py [--families N]``.
The ledger is generated at run time in a temporary directory (two transactions: families, then
every step change). Prints a table and writes ``tests/benchmarks/results/bench_status.json``.
Target: ``status()`` under 2 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from batch import outputs
from batch.ledger import Ledger, State
from tests.ledgers import family

RESULTS = Path(__file__).resolve().parent / "results"
HOST = "http://127.0.0.1:8765"
FAILURES = ("Case Type is required", "Storage provider 777 not found",
            "BioSample Name S1 is not an existing sample")


def build(path: Path, families: int) -> float:
    """A ledger where most families are done and some failed, are unknown or pending."""
    started = time.perf_counter()
    with Ledger.open(path) as ledger:
        ledger.add_families(family(f"FAM-{n:06d}", n, sample=f"S{n:06d}", row_hash=f"{n:064x}",
                                   steps=("create", "assign"))
                            for n in range(families))
        run = ledger.begin_run("run", manifest_path="bench.csv", host=HOST,
                               options={"concurrency": 8})
        with ledger.transaction():
            for n in range(families):
                _record(ledger, n, run)
        ledger.end_run(run, exit_code=1, counts={"families": families})
    return time.perf_counter() - started


def _record(ledger: Ledger, n: int, run: int) -> None:
    fid, case, bucket = f"FAM-{n:06d}", f"EMG{n:09d}", n % 100
    if bucket < 2:  # pending: never attempted
        return
    if bucket < 7:
        ledger.set_step(fid, "create", State.FAILED, attempt=True, http_status=400,
                        error_class="PermanentError", error_message=FAILURES[n % 3], run_id=run)
        cells = {"Family Id": fid, "Case Type": "", "BioSample Name": f"S{n:06d}"}
        ledger.update_family(fid, rows=json.dumps([{"number": n + 3, "cells": cells}]))
        return
    if bucket < 9:
        ledger.set_step(fid, "create", State.UNKNOWN, attempt=True,
                        error_class="AmbiguousCreate", error_message="no answer", run_id=run)
        return
    ledger.set_step(fid, "create", State.SUCCEEDED, attempt=True, http_status=201,
                    case_name=case, run_id=run)
    ledger.update_family(fid, case_name=case)
    failed = bucket < 12
    ledger.set_step(fid, "assign", State.FAILED if failed else State.SUCCEEDED, attempt=True,
                    http_status=404 if failed else 200, case_name=case, run_id=run,
                    error_class="NotFound" if failed else None,
                    error_message="no such user" if failed else None)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by *fn* and what it returned."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    """Build the ledger, time each output, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--families", type=int, default=100_000)
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"families": args.families}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        figures["build_ledger_s"] = build(base / "bench.ledger.sqlite", args.families)
        with Ledger.open(base / "bench.ledger.sqlite", create=False) as ledger:
            figures["status_s"], report = timed(lambda: outputs.status_report(ledger))
            figures["render_status_s"], _ = timed(lambda: outputs.render_status(report))
            parquet = base / "cases.parquet"
            figures["export_parquet_s"], _ = timed(lambda: outputs.export(ledger, parquet))
            figures["export_csv_s"], _ = timed(lambda: outputs.export(ledger, base / "c.csv"))
            figures["export_xlsx_s"], _ = timed(lambda: outputs.export(ledger, base / "c.xlsx"))
            figures["xlsx_mb"] = round((base / "c.xlsx").stat().st_size / 1e6, 1)
            assert pl.read_parquet(parquet).height == args.families
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    figures["status_target_met"] = figures["status_s"] < 2.0
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) and key.endswith("_s") else value
        print(f"{key:<{width}}  {shown}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_status.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["status_target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
