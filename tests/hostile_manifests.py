"""Hostile manifests: files a user may feed ``run`` or ``validate``."""

from __future__ import annotations

from tests.hostile import HEADER, Hostile, csv_file

CASES: list[Hostile] = [
    Hostile("empty file", ("validate", "m.csv"), 2, "empty", csv_file("m.csv", "")),
    Hostile("missing Sex column", ("validate", "m.csv"), 2, "missing column",
            csv_file("m.csv", "Family Id,Case Type,Files Names\nF1,Exome,\n")),
    Hostile("bad sex value", ("validate", "m.csv"), 2, "Sex is not valid",
            csv_file("m.csv", HEADER + "\nF1,Exome,,FASTQ,S1,,proband,X,Seizure\n")),
]
