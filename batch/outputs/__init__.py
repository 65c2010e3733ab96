"""The last stage of the data flow: what a run leaves for people and for the next run.

``results`` (the official results CSV), ``review`` (the review workbook, its Summary sheet and
charts), ``export`` (the Cases table as XLSX, CSV or Parquet), ``status`` (where a ledger
stands, what a run did, a revert, in words), ``templates`` (manifests to start from) and
``table`` (pulled server data). They share ``outcomes`` (what to say about a family's outcome),
``workbook`` (safe, typed XLSX sheets), ``files`` (atomic writes, mode 0600, the one
translation of ``OSError``, formula safety for CSV) and ``keep`` (what an output never
replaces).

Spreadsheet safety: manifest and server values are data. The workbook keeps formula-looking
text as text, headers included; every CSV that holds server or manifest text (exports, pull
tables, headers included) prefixes text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return with a single quote (OWASP's advice against CSV injection). The results CSV
keeps the manifest's own cells byte for byte, on purpose: it is the official CLI's format and
is meant to be run again; what emg-batch writes into it (``Errors``, new case names) is made
safe like any other CSV text.
"""

from batch.outputs.export import export
from batch.outputs.files import atomic_path, check_writable, csv_safe, formula_safe, make_dir
from batch.outputs.outcomes import CASE_COLUMNS, case_url, cases_table, problem_message
from batch.outputs.results import results_header, write_results, write_results_csv
from batch.outputs.review import NOT_IN_LEDGER, write_review
from batch.outputs.status import render_problems, render_status, render_summary, status_report
from batch.outputs.table import write_table
from batch.outputs.templates import (
    OFFICIAL_TEMPLATE_COLUMNS,
    UPDATE_TEMPLATE_COLUMNS,
    write_template,
)

__all__ = [
    "CASE_COLUMNS",
    "NOT_IN_LEDGER",
    "OFFICIAL_TEMPLATE_COLUMNS",
    "UPDATE_TEMPLATE_COLUMNS",
    "atomic_path",
    "case_url",
    "cases_table",
    "check_writable",
    "csv_safe",
    "export",
    "formula_safe",
    "make_dir",
    "problem_message",
    "render_problems",
    "render_status",
    "render_summary",
    "results_header",
    "status_report",
    "write_results",
    "write_results_csv",
    "write_review",
    "write_table",
    "write_template",
]
