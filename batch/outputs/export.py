"""``emg-batch export``: the Cases table of a ledger as XLSX (the review workbook), CSV or
Parquet. The CSV is for spreadsheets, so text that would start a formula is escaped."""

from __future__ import annotations

from pathlib import Path

from batch.ledger import Ledger, RunRecord
from batch.manifest import Manifest
from batch.outputs.files import atomic_path, csv_safe
from batch.outputs.outcomes import cases_table
from batch.outputs.review import write_review


def export(ledger: Ledger, out: Path, *, manifest: Manifest | None = None,
           host: str | None = None, live: RunRecord | None = None) -> Path:
    """Write the Cases table to *out*: ``.xlsx`` (the whole review workbook), .csv or .parquet.
    *live*: the run going on now (its steps being sent are in progress, not interrupted).

    The CSV is for spreadsheets: text cells that would start a formula get a leading ``'`` (see
    :func:`csv_safe`); times are local, ``YYYY-MM-DD HH:MM:SS``. Parquet keeps values and types
    as they are (Int64 counts, microsecond datetimes).
    """
    suffix = out.suffix.lower()
    if suffix == ".xlsx":
        return write_review(ledger, manifest, out, host=host, live=live)
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"cannot export to {out.name}: use .xlsx, .csv or .parquet")
    if host is None:
        last = ledger.last_run("run")
        host = last.host if last else None
    frame = cases_table(ledger, manifest=manifest, host=host, live=live is not None)
    with atomic_path(out) as tmp:
        if suffix == ".csv":
            csv_safe(frame).write_csv(tmp, datetime_format="%Y-%m-%d %H:%M:%S")
        else:
            frame.write_parquet(tmp)
    return out
