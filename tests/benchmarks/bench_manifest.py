"""Benchmark: read, check and build 100,000 families from CSV and Parquet.

Run: ``python tests/benchmarks/bench_manifest.py [--families N]``.
Each format runs in a fresh subprocess so that its peak RSS is its own. Prints a table and
writes ``tests/benchmarks/results/bench_manifest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from batch.manifest import OFFICIAL_COLUMNS, read_manifest
from batch.payload import ResolveError, build_payload, check_family, check_manifest_wide

RESULTS = Path(__file__).resolve().parent / "results"


class CheapResolver:
    """Answers at once: one s3 storage (461); plain paths need no other look-up."""

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        if storage_id != 461:
            raise ResolveError(f"Storage provider {storage_id} not found")
        return {"id": 461, "scheme": "s3"}

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        raise ResolveError(f"Path {path} not found")

    async def find_sample(self, name: str) -> Mapping[str, Any] | None:
        return None


def _rows(families: int) -> dict[str, list[str]]:
    columns: dict[str, list[str]] = {name: [] for name in (*OFFICIAL_COLUMNS, "Lab Ref")}
    for number in range(families):
        fid = f"FAM-{number:06d}"
        for relation, sex in (("proband", "M"), ("mother", "F"), ("father", "M")):
            sample = f"S{number:06d}{relation[0]}"
            cells = {
                "Family Id": fid,
                "Case Type": "Exome" if relation == "proband" else "",
                "Files Names": f"/runs/2024/{sample}/{sample}.hard-filtered.vcf.gz",
                "BioSample Name": sample,
                "Visualization Files": f"/runs/2024/{sample}/{sample}.cram",
                "Storage Provider Id": "461",
                "Relation": relation,
                "Sex": sex,
                "Phenotypes Id": "HP:0001250;HP:0001263" if relation == "proband" else "",
                "Phenotypes": "" if relation == "proband" else "unaffected",
                "Date Of Birth": "2019-05-17",
                "Selected Preset": "Default" if relation == "proband" else "",
                "Clinical Notes": "Referral: seizures, hypotonia" if relation == "proband" else "",
                "Lab Ref": f"LR-{number}",
            }
            for name in columns:
                columns[name].append(cells.get(name, ""))
    return columns


def generate(directory: Path, families: int) -> dict[str, Path]:
    """Write the benchmark manifest as an official CSV and as Parquet."""
    frame = pl.DataFrame(_rows(families))
    csv_path = directory / "bench.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("[Data]\n")
        frame.write_csv(handle)
    parquet_path = directory / "bench.parquet"
    frame.write_parquet(parquet_path)
    return {"csv": csv_path, "parquet": parquet_path}


async def _check_and_build(path: Path) -> dict[str, float]:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    manifest = read_manifest(path)
    timings["read_s"] = time.perf_counter() - start
    start = time.perf_counter()
    wide = check_manifest_wide(manifest)
    timings["manifest_wide_s"] = time.perf_counter() - start
    resolver = CheapResolver()
    start = time.perf_counter()
    errors = sum(p.severity == "error" for p in wide)
    built = 0
    for family in manifest.families():
        problems = await check_family(family, resolver, file=path.name)
        errors += sum(p.severity == "error" for p in problems)
        payload = await build_payload(family, resolver)
        built += bool(payload)  # payloads are dropped at once, as the run engine does
    timings["check_build_s"] = time.perf_counter() - start
    timings["families"] = float(len(manifest))
    timings["rows"] = float(manifest.row_count)
    timings["errors"] = float(errors)
    timings["built"] = float(built)
    return timings


def _peak_rss_mb() -> float:
    """Peak RSS of this process image: VmHWM (ru_maxrss would include the parent's peak)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(path: Path) -> None:
    timings = asyncio.run(_check_and_build(path))
    timings["total_s"] = timings["read_s"] + timings["manifest_wide_s"] + timings["check_build_s"]
    timings["peak_rss_mb"] = _peak_rss_mb()
    timings["file_mb"] = path.stat().st_size / 1e6
    print(json.dumps(timings))


def main() -> None:
    """Generate, then measure each format in its own process."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--families", type=int, default=100_000)
    parser.add_argument("--child", type=Path)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(Path(tmp), args.families)
        for kind, path in paths.items():
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path)],
                check=True,
                capture_output=True,
                text=True,
            )
            results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    keys = (
        "families",
        "rows",
        "file_mb",
        "read_s",
        "manifest_wide_s",
        "check_build_s",
        "total_s",
        "peak_rss_mb",
        "errors",
    )
    print(f"{'format':8}" + "".join(f"{key:>16}" for key in keys))
    for kind, timings in results.items():
        print(f"{kind:8}" + "".join(f"{timings[key]:>16.1f}" for key in keys))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_manifest.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
