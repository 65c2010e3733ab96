"""Stage 1 of the data flow: a manifest file (official CSV, plain CSV, Parquet, XLSX) read into
rows grouped by family.

``read`` (file → checked ``Manifest``) uses ``formats`` (file → records), ``csv_tokenizer``
(CSV text → records) and ``store`` (records → packed rows); ``model`` holds the data types
and ``columns`` the vocabulary. (The official results file is an output: ``outputs.results``.)
"""

from batch.manifest.columns import (
    ACTION_COLUMNS,
    KNOWN_COLUMNS,
    OFFICIAL_COLUMNS,
    parse_gene_lists,
    split_items,
)
from batch.manifest.model import Actions, Family, Manifest, Problem, Row
from batch.manifest.read import read_manifest

__all__ = [
    "ACTION_COLUMNS",
    "KNOWN_COLUMNS",
    "OFFICIAL_COLUMNS",
    "Actions",
    "Family",
    "Manifest",
    "Problem",
    "Row",
    "parse_gene_lists",
    "read_manifest",
    "split_items",
]
