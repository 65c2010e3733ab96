"""``emg-batch template``: manifests to start from, and an example to copy valid values from."""

from __future__ import annotations

from pathlib import Path

from batch.manifest import ACTION_COLUMNS, OFFICIAL_COLUMNS
from batch.outputs.files import atomic_path, make_dir
from batch.outputs.keep import refuse_existing

# The 23 columns of the official batch CSV, in the official template's order.
OFFICIAL_TEMPLATE_COLUMNS = OFFICIAL_COLUMNS
UPDATE_TEMPLATE_COLUMNS = ACTION_COLUMNS
TEMPLATE_HELP = (
    "batch_template.csv: one row per family member under the header; rows with the same "
    "Family Id make one case. update_template.csv: one row per existing case (Case Id) with the "
    "actions to run on it. Both files are header-only: every row you add is sent. "
    "example_manifest.csv: a FASTQ trio and a single VCF case with valid values in every "
    "column to copy from (docs/manifest.md lists every column's valid values)."
)
#: A FASTQ trio and a single VCF case with its CRAM: a value of every kind a column takes.
EXAMPLE_ROWS = (
    "TRIO-01,Whole Genome,/runs/R1/P1_R1.fastq.gz;/runs/R1/P1_R2.fastq.gz,FASTQ,P1,,1,,true,"
    "proband,M,,HP:0001250;HP:0001263,2020-01-02,false,1,,,Default,,Seizures from 4 months,"
    "2024-07-31,true",
    "TRIO-01,,/runs/R1/M1_R1.fastq.gz;/runs/R1/M1_R2.fastq.gz,FASTQ,M1,,1,,,mother,F,"
    "unaffected,,1990-08-02,,,,,,,,,",
    "TRIO-01,,/runs/R1/F1_R1.fastq.gz;/runs/R1/F1_R2.fastq.gz,FASTQ,F1,,1,,,father,M,"
    "unaffected,,1988-11-20,,,,,,,,,",
    "VCF-01,Exome,/analysis/NA12878/NA12878.hard-filtered.vcf.gz,VCF,NA12878,"
    "/analysis/NA12878/NA12878.cram,1,,,proband,U,Developmental delay,,,,,,,Default,,,,false",
)


def write_template(out_dir: Path, *, force: bool = False) -> list[Path]:
    """Write manifests to start from: the official batch CSV, an update CSV and an example.

    ``batch_template.csv`` is the official format: a ``[Data]`` row (padded with commas as the
    official template is) and the 23 official columns. ``update_template.csv`` holds ``Case Id``
    and the action columns. Neither holds example rows, since any row would be sent as data;
    ``example_manifest.csv`` holds them, valid, to copy values from (see TEMPLATE_HELP).
    A file already there (perhaps filled in since) is replaced only with *force*; without it,
    ``UsageError`` names it and nothing is written.
    """
    official = OFFICIAL_TEMPLATE_COLUMNS
    data_row = "[Data]" + "," * (len(official) - 1)
    files = {
        "batch_template.csv": [data_row, ",".join(official)],
        "update_template.csv": [",".join(UPDATE_TEMPLATE_COLUMNS)],
        "example_manifest.csv": [data_row, ",".join(official), *EXAMPLE_ROWS],
    }
    if not force:
        refuse_existing(out_dir / name for name in files)
    make_dir(out_dir)
    written = []
    for name, lines in files.items():
        out = out_dir / name
        with atomic_path(out) as tmp:
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            tmp.chmod(0o644)  # no patient data in a template: readable like any new file
        written.append(out)
    return written
