"""Benchmark: ``validate`` and ``run --dry-run`` of 100,000-family manifests, as whole processes.

Run: ``python tests/benchmarks/bench_validate.py [--families N] [--rounds R] [--against TREE]``.
Writes three official batch CSVs to a temporary folder (never committed): families of three
(FASTQ trios), single-member families (VCF with a CRAM), and mixed families (one to four
members, FASTQ or VCF, some with action columns and some naming an existing case), with birth
dates, names and notes that vary from row to row. Then, per manifest:

* ``wc -l`` and a plain ``csv.reader`` pass over the same file: the floor, in the same run;
* ``emg-batch validate`` (no server: look-ups are reported as not checked);
* ``emg-batch run --dry-run --sandbox`` (validate, look up against the in-process sandbox,
  register and plan; nothing is created) for the trios and the mixed manifest.

Each command runs in its own process; the table gives wall seconds, CPU seconds and peak RSS of
that process (``common.run_measured``), the best of R rounds. The targets, for 100,000 families
of three: validate under 5 s, dry run under 8 s, both under 300 MB. With ``--against TREE`` (a
folder holding another ``batch`` package, e.g. one made by ``git archive main batch | tar -x -C
TREE``) the same commands run from that tree too, in the same rounds, and the table shows the
ratio. Writes ``tests/benchmarks/results/bench_validate.json``.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from common import Measured, print_table, run_measured, write_json

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.manifests import HEADER  # noqa: E402

ACTIONS = ["Case Id", "Assign To", "Set Status"]
TARGETS = {("trios", "validate"): 5.0, ("trios", "run --dry-run"): 8.0}
MAX_RSS_MB = 300.0
RELATIONS = ("proband", "mother", "father", "sibling")


def _date(rng: random.Random, first: int, last: int) -> str:
    return f"{rng.randint(first, last)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _member(rng: random.Random, family: str, number: int, kind: str) -> dict[str, str]:
    relation = RELATIONS[min(number, 3)]
    sample = f"{family}-S{number}"
    proband = number == 0
    row = {
        "Family Id": family, "BioSample Name": sample, "Storage Provider Id": "1",
        "Relation": relation, "Sex": "F" if relation == "mother" else rng.choice("MFU"),
        "Date Of Birth": _date(rng, 2000, 2023) if proband else _date(rng, 1950, 1999),
        "Phenotypes Id": f"HP:{rng.randint(1, 9999999):07d};HP:0001263" if proband else "",
        "Phenotypes": "" if proband else "unaffected",
    }
    if kind == "fastq":
        row["Files Names"] = ";".join(f"/runs/{family}/{sample}_S{number}_L001_{read}_001.fastq.gz"
                                      for read in ("R1", "R2"))
    else:
        row["Files Names"] = f"/analysis/{family}/{sample}.hard-filtered.vcf.gz"
        row["Visualization Files"] = f"/analysis/{family}/{sample}.cram"
    if proband:
        row.update({"Case Type": "Whole Genome" if kind == "fastq" else "Exome",
                    "Execute Now": "true", "Selected Preset": "Default", "Opt In": "true",
                    "Gene List Id": str(rng.randint(100, 999)),
                    "Clinical Notes": f"Referral {rng.randint(1, 10**6)}: seizures, hypotonia"})
    return row


def _families(shape: str, families: int, rng: random.Random) -> Iterator[list[dict[str, str]]]:
    for n in range(families):
        family = f"FAM-{n:06d}"
        if shape == "trios":
            size, kind = 3, "fastq"
        elif shape == "singles":
            size, kind = 1, "vcf"
        else:
            size, kind = rng.choice((1, 1, 2, 3, 3, 4)), rng.choice(("fastq", "vcf"))
        rows = [_member(rng, family, i, kind) for i in range(size)]
        if shape == "mixed":
            _mix_actions(rows[0], n, rng)
        yield rows


def _mix_actions(proband: dict[str, str], number: int, rng: random.Random) -> None:
    """Some families name their existing case, some ask for an assignee or a status."""
    draw = rng.random()
    if draw < 0.05:
        proband["Case Id"] = f"EMG{100000000 + number}"
    elif draw < 0.25:
        proband["Assign To"] = "analyst@example.com;geneticist@example.com"
    elif draw < 0.35:
        proband["Set Status"] = "custom_status_1"


def write_manifest(path: Path, shape: str, families: int) -> Path:
    """An official batch CSV of *families* families of one *shape*."""
    header = HEADER + (ACTIONS if shape == "mixed" else [])
    rng = random.Random(f"{shape}-{families}")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["[Data]"] + [""] * (len(header) - 1))
        writer.writerow(header)
        for rows in _families(shape, families, rng):
            writer.writerows([row.get(c, "") for c in header] for row in rows)
    return path


_CSV_PASS = "import csv, sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=''))))"


def commands(manifest: Path, shape: str) -> dict[str, list[str]]:
    """What runs on *manifest*: the floors, validate, and (trios, mixed) the dry run."""
    found = {
        "wc -l": ["wc", "-l", str(manifest)],
        "csv.reader": [sys.executable, "-c", _CSV_PASS, str(manifest)],
        "validate": [sys.executable, "-m", "batch", "validate", str(manifest), "-q"],
    }
    if shape != "singles":
        found["run --dry-run"] = [sys.executable, "-m", "batch", "run", str(manifest),
                                  "--dry-run", "--sandbox", "-q"]
    return found


def _measure(cmd: list[str], tree: Path, folder: Path) -> Measured:
    for stale in folder.glob("*.ledger.sqlite*"):  # every dry run starts from no ledger
        stale.unlink()
    env = dict(os.environ, PYTHONPATH=str(tree))  # this tree's (or the other's) batch first
    env.pop("EMG_HOST", None)
    measured = run_measured(cmd, env=env, cwd=folder, timeout=1800)
    if measured.code not in (0, 1):
        raise RuntimeError(f"{cmd} exited {measured.code}: {measured.stderr[-800:]}")
    return measured


def run(families: int, rounds: int, trees: dict[str, Path]) -> list[dict[str, object]]:
    """Every manifest and command, the best of *rounds*, from every tree."""
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for shape in ("trios", "singles", "mixed"):
            manifest = write_manifest(folder / f"{shape}.csv", shape, families)
            for label, cmd in commands(manifest, shape).items():
                for name, tree in trees.items():
                    if name != "this" and label in ("wc -l", "csv.reader"):
                        continue  # the floors do not depend on the tree
                    best = min((_measure(cmd, tree, folder) for _ in range(rounds)),
                               key=lambda m: m.wall_s)
                    rows.append(_row(shape, label, name, best, manifest, families))
    return rows


def _row(shape: str, label: str, tree: str, m: Measured, manifest: Path,
         families: int) -> dict[str, object]:
    target = TARGETS.get((shape, label)) if families >= 100_000 else None
    met = None if target is None or tree != "this" else (
        m.wall_s < target and m.peak_rss_mb < MAX_RSS_MB)
    return {"manifest": shape, "families": families, "MB": manifest.stat().st_size / 1e6,
            "command": label, "tree": tree, "wall_s": m.wall_s, "cpu_s": m.cpu_s,
            "peak_rss_mb": m.peak_rss_mb, "target_s": target, "met": met}


def _add_ratios(rows: list[dict[str, object]]) -> None:
    """``vs csv`` (wall over the csv.reader pass) and ``this/other`` (wall, same command)."""
    def wall(shape: object, label: str, tree: str) -> float | None:
        found = [r["wall_s"] for r in rows
                 if r["manifest"] == shape and r["command"] == label and r["tree"] == tree]
        return float(found[0]) if found else None  # type: ignore[arg-type]

    for row in rows:
        floor = wall(row["manifest"], "csv.reader", "this")
        other = wall(row["manifest"], str(row["command"]), "other")
        row["vs_csv"] = float(row["wall_s"]) / floor if floor else None  # type: ignore[arg-type]
        row["this/other"] = (float(row["wall_s"]) / other  # type: ignore[arg-type]
                             if other and row["tree"] == "this" else None)


def main() -> None:
    """Generate the manifests, measure, print the table and write the JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--families", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--against", type=Path)
    args = parser.parse_args()
    trees = {"this": REPO, **({"other": args.against.resolve()} if args.against else {})}
    rows = run(args.families, args.rounds, trees)
    _add_ratios(rows)
    print_table(rows, ["manifest", "MB", "command", "tree", "wall_s", "cpu_s", "peak_rss_mb",
                       "vs_csv", "this/other", "target_s", "met"],
                title=f"validate and dry run, {args.families} families")
    write_json("bench_validate", {"families": args.families, "rounds": args.rounds,
                                  "max_rss_mb": MAX_RSS_MB, "rows": rows})
    if any(r["met"] is False for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
