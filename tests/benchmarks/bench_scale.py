"""Benchmark: every stage of ``emg-batch`` on a 100,000-family manifest, CSV and Parquet.

For each format a manifest of 3-member FASTQ families is generated at run time; then each stage
runs as its own ``emg-batch`` child process (so time, CPU and peak RSS are that stage's alone)
against a fresh sandbox in another process, with no latency and no limit:

``validate`` (offline) -> ``plan`` (``run --dry-run``: validate, look-ups, ledger, plan) ->
``run`` (full speed, default options) -> ``status`` -> ``export`` (Parquet and XLSX) ->
``resume plan`` (``run --dry-run`` of the finished manifest) -> ``resume`` (``run`` again:
validate and plan, nothing to send, results and review files rewritten).

Targets: peak RSS under 500 MB in every stage; ``status`` under 2 s; resume planning (the whole
``run --dry-run`` process) under 10 s. The ``resume`` stage also rewrites the results CSV and
the review workbook of all 100,000 families; its engine time is in the note.

Run: ``python tests/benchmarks/bench_scale.py [--families 100000]
[--formats csv parquet]``. Prints a table and writes ``tests/benchmarks/results/bench_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    Measured,
    Sandbox,
    cli_env,
    emg_batch,
    make_manifest,
    print_table,
    run_measured,
    write_json,
)

RSS_LIMIT_MB = 500.0
STATUS_LIMIT_S = 2.0
RESUME_LIMIT_S = 10.0
COLUMNS = ["format", "stage", "code", "wall_s", "cpu_s", "peak_rss_mb", "per_1000_s", "note",
           "target", "met"]


def stage_row(fmt: str, stage: str, measured: Measured, families: int) -> dict[str, Any]:
    """One table row; a failed stage keeps the tail of its error output."""
    row: dict[str, Any] = {"format": fmt, "stage": stage, "code": measured.code,
                           "wall_s": measured.wall_s, "cpu_s": measured.cpu_s,
                           "peak_rss_mb": measured.peak_rss_mb,
                           "per_1000_s": measured.wall_s / families * 1000}
    if measured.code not in (0, 1):
        row["error"] = measured.stderr[-1500:]
    if measured.stdout.lstrip().startswith("{"):
        summary = json.loads(measured.stdout)
        if "created" in summary:
            row["note"] = (f"created {summary['created']}, failed {summary['failed']}, "
                           f"requests {summary['requests']}, engine {summary['elapsed']:.1f}s")
            row["summary"] = {k: v for k, v in summary.items() if k != "problems"}
    return row


def judge(row: dict[str, Any]) -> None:
    """Targets: RSS everywhere, time for status and resume planning."""
    targets = [f"RSS<{RSS_LIMIT_MB:g}MB"]
    met = row["peak_rss_mb"] < RSS_LIMIT_MB and row["code"] in (0, 1)
    if row["stage"] == "status":
        targets.append(f"<{STATUS_LIMIT_S:g}s")
        met = met and row["wall_s"] < STATUS_LIMIT_S
    if row["stage"] == "resume plan":  # planning: the whole process, reading included
        targets.append(f"<{RESUME_LIMIT_S:g}s")
        met = met and row["wall_s"] < RESUME_LIMIT_S
    row["target"] = ", ".join(targets)
    row["met"] = met


def one_format(fmt: str, families: int, work: Path, run_options: list[str]) -> list[dict[str, Any]]:
    """Every stage on one manifest, against one sandbox; answer the rows."""
    started = time.perf_counter()
    manifest = make_manifest(work / fmt, families, prefix="SCL", fmt=fmt)
    generated = time.perf_counter() - started
    size_mb = manifest.stat().st_size / 1e6
    print(f"{fmt}: {families} families generated in {generated:.1f}s ({size_mb:.1f} MB)",
          flush=True)
    env = cli_env()
    m = str(manifest)
    rows = []
    with Sandbox() as sandbox:
        run = ("run", m, "--host", sandbox.url, "--quiet", "--json", *run_options)
        stages: list[tuple[str, tuple[str, ...]]] = [
            ("validate", ("validate", m, "--quiet")),
            ("plan", (*run, "--dry-run")),
            ("run", run),
            ("status", ("status", m)),
            ("export parquet", ("export", m, "--out", str(work / f"{fmt}_export.parquet"))),
            ("export xlsx", ("export", m, "--out", str(work / f"{fmt}_export.xlsx"))),
            ("resume plan", (*run, "--dry-run")),
            ("resume", run),
        ]
        for stage, args in stages:
            measured = run_measured(emg_batch(*args), env=env, cwd=manifest.parent)
            row = stage_row(fmt, stage, measured, families)
            judge(row)
            print(f"  {stage:<15} {row['wall_s']:8.2f}s  {row['peak_rss_mb']:7.1f} MB  "
                  f"exit {row['code']}  {row.get('note', '')}", flush=True)
            rows.append(row)
        stats = sandbox.stats()
    rows[0]["note"] = f"{size_mb:.1f} MB file, generated in {generated:.1f}s"
    for row in rows:
        if row["stage"] == "run":
            row["server"] = {k: v for k, v in stats.items() if k != "routes"}
    return rows


def main() -> int:
    """Run every stage for every format; print a table; write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=100_000)
    parser.add_argument("--formats", nargs="+", choices=("csv", "parquet"),
                        default=["csv", "parquet"])
    parser.add_argument("--concurrency", type=int, default=None,
                        help="passed to emg-batch run (default: its own default)")
    parser.add_argument("--rate", type=float, default=None,
                        help="passed to emg-batch run (default: adaptive)")
    args = parser.parse_args()
    options: list[str] = []
    if args.concurrency is not None:
        options += ["--concurrency", str(args.concurrency)]
    if args.rate is not None:
        options += ["--rate", str(args.rate)]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_scale-") as tmp:
        for fmt in args.formats:
            rows += one_format(fmt, args.families, Path(tmp), options)
    print_table(rows, COLUMNS, title=f"Scale: {args.families} families per manifest, "
                "each stage a separate emg-batch process, sandbox with no latency or limit")
    write_json("bench_scale", {"families": args.families, "run_options": options, "rows": rows,
                               "all_met": all(r["met"] for r in rows)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
