"""Manifest generators for tests and benchmarks (official batch CSV, FASTQ on storage 1)."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

HEADER = [
    "Family Id", "Case Type", "Files Names", "Sample Type", "BioSample Name",
    "Visualization Files", "Storage Provider Id", "Default Project", "Execute Now", "Relation",
    "Sex", "Phenotypes", "Phenotypes Id", "Date Of Birth", "Boost Genes", "Gene List Id",
    "Kit Id", "Intersect Bed Id", "Selected Preset", "Label Id", "Clinical Notes", "Due Date",
    "Opt In",
]

RELATIONS = ("proband", "mother", "father", "sibling")


def family_rows(
    family_id: str, *, members: int = 3, sample_prefix: str | None = None
) -> list[dict[str, str]]:
    """Rows of one FASTQ family: proband first, then mother, father, siblings."""
    prefix = sample_prefix or family_id
    rows = []
    for i in range(members):
        relation = RELATIONS[min(i, 3)]
        sample = f"{prefix}-S{i}"
        files = ";".join(
            f"/runs/{family_id}/{sample}_S{i}_L001_{r}_001.fastq.gz" for r in ("R1", "R2")
        )
        rows.append({
            "Family Id": family_id,
            "Case Type": "Whole Genome" if i == 0 else "",
            "Files Names": files,
            "BioSample Name": sample,
            "Storage Provider Id": "1",
            "Execute Now": "true" if i == 0 else "",
            "Relation": relation,
            "Sex": "F" if relation == "mother" else "M",
            "Phenotypes Id": "HP:0001250;HP:0001263" if i == 0 else "",
            "Phenotypes": "" if i == 0 else "unaffected",
            "Date Of Birth": "2020-01-02" if i == 0 else "1990-03-04",
            "Selected Preset": "Default" if i == 0 else "",
        })
    return rows


def write_manifest(
    path: Path,
    families: int,
    *,
    members: int = 3,
    prefix: str = "FAM",
    extra: Mapping[str, Sequence[str]] | None = None,
    data_row: bool = True,
) -> Path:
    """An official batch CSV of *families* families; *extra*: more columns, one value per family."""
    extra = dict(extra or {})
    header = HEADER + list(extra)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if data_row:
            writer.writerow(["[Data]"] + [""] * (len(header) - 1))
        writer.writerow(header)
        for n in range(families):
            fid = f"{prefix}-{n:06d}"
            for i, row in enumerate(family_rows(fid, members=members)):
                for column, values in extra.items():
                    row[column] = values[n] if i == 0 else ""
                writer.writerow([row.get(c, "") for c in header])
    return path
