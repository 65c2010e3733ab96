"""Benchmark: reading manifests (CSV, Parquet, XLSX with date cells), and refusing a zip bomb.

Run: ``python tests/benchmarks/bench_inputs.py [--families N] [--against TREE]``.
Each measurement runs in a fresh subprocess (its own peak RSS) and takes the best of three
reads. With ``--against TREE`` (a folder holding another ``batch`` package, e.g. one made by
``git archive main batch | tar -x -C TREE``) both trees read the same files in the same run,
and the table shows the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[2]


def _frame(families: int) -> pl.DataFrame:
    rows: dict[str, list[object]] = {name: [] for name in (
        "Family Id", "Case Type", "Files Names", "BioSample Name", "Storage Provider Id",
        "Relation", "Sex", "Phenotypes Id", "Phenotypes", "Date Of Birth", "Clinical Notes")}
    for number in range(families):
        for relation, sex in (("proband", "M"), ("mother", "F"), ("father", "M")):
            sample = f"S{number:06d}{relation[0]}"
            cells: dict[str, object] = {
                "Family Id": f"FAM-{number:06d}", "Case Type": "Exome",
                "Files Names": f"/runs/2024/{sample}/{sample}.hard-filtered.vcf.gz",
                "BioSample Name": sample, "Storage Provider Id": "461", "Relation": relation,
                "Sex": sex, "Phenotypes Id": "HP:0001250" if relation == "proband" else "",
                "Phenotypes": "" if relation == "proband" else "unaffected",
                "Date Of Birth": dt.date(2019, 5, 17), "Clinical Notes": "Referral: seizures",
            }
            for name, value in cells.items():
                rows[name].append(value)
    return pl.DataFrame(rows)


def generate(folder: Path, families: int) -> dict[str, Path]:
    """The same manifest as CSV (dates as text), Parquet and XLSX (dates typed)."""
    frame = _frame(families)
    paths = {"csv": folder / "m.csv", "parquet": folder / "m.parquet", "xlsx": folder / "m.xlsx"}
    frame.with_columns(pl.col("Date Of Birth").cast(pl.String)).write_csv(paths["csv"])
    frame.write_parquet(paths["parquet"])
    frame.write_excel(paths["xlsx"], worksheet="Cases")
    bomb = folder / "bomb.xlsx"
    _bomb(paths["xlsx"], bomb)
    paths["xlsx bomb"] = bomb
    return paths


def _bomb(source: Path, target: Path) -> None:
    sys.path.insert(0, str(REPO))
    from tests.workbooks import padded_copy

    padded_copy(source, target, sheet_part="xl/worksheets/sheet1.xml", pad=1_000_000_000)


def _child(path: Path) -> None:
    from batch.errors import ManifestError
    from batch.manifest import read_manifest

    best = float("inf")
    outcome = ""
    for _ in range(1 if "bomb" in path.name else 3):
        start = time.perf_counter()
        try:
            outcome = f"{len(read_manifest(path))} families"
        except ManifestError as exc:
            outcome = str(exc)[:60]
        best = min(best, time.perf_counter() - start)
    print(json.dumps({"read_s": best, "peak_rss_mb": _peak_rss_mb(), "outcome": outcome}))


def _peak_rss_mb() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(tree: Path, path: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, __file__, "--child", str(path)], check=True,
                          capture_output=True, text=True, env={"PYTHONPATH": str(tree)},
                          timeout=1800)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Generate the files, then read each with this tree (and the other one)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--families", type=int, default=20_000)
    parser.add_argument("--against", type=Path)
    parser.add_argument("--child", type=Path)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    trees = {"this": REPO, **({"other": args.against} if args.against else {})}
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(Path(tmp), args.families)
        print(f"{'file':10} {'MB':>7} {'tree':6} {'read s':>8} {'RSS MB':>8}  outcome")
        for kind, path in paths.items():
            size = path.stat().st_size / 1e6
            times = {}
            for name, tree in trees.items():
                if kind == "xlsx bomb" and name == "other":
                    continue  # an unguarded reader would take gigabytes
                found = _measure(tree, path)
                times[name] = float(found["read_s"])  # type: ignore[arg-type]
                print(f"{kind:10} {size:7.1f} {name:6} {found['read_s']:8.3f}"
                      f" {found['peak_rss_mb']:8.0f}  {found['outcome']}")
            if len(times) == 2:
                print(f"{'':25} ratio this/other {times['this'] / times['other']:.2f}")


if __name__ == "__main__":
    main()
