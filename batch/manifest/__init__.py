"""Stage 1 of the data flow: a manifest file (official CSV, plain CSV, Parquet, XLSX, XLS, ODS)
read into rows grouped by family.

``read`` (file → checked ``Manifest``; CSV files) uses ``csv`` (CSV text → records),
``parquet`` and ``excel`` (workbooks, checked first as zip archives by ``archive``) and
``store`` (records → packed rows); ``model`` holds the data types and the vocabulary. (The
official results file is an output: ``outputs.results``.)
"""

from batch.manifest.model import (
    ACTION_COLUMNS,
    KNOWN_COLUMNS,
    OFFICIAL_COLUMNS,
    Actions,
    Family,
    Manifest,
    Problem,
    Row,
    parse_gene_lists,
    split_items,
)
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
