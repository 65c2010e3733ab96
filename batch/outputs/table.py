"""Tables of server data (``pull`` outputs) as XLSX, CSV or Parquet, chosen by the suffix.

In the workbook dates are real dates and every text stays text (never a formula); CSV dates
are UTC (``…Z``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import polars as pl

from batch.errors import UsageError
from batch.outputs.files import atomic_path
from batch.outputs.workbook import Column, add_sheet, write_workbook

TABLE_SUFFIXES = (".xlsx", ".csv", ".parquet")
CSV_DATETIME = "%Y-%m-%dT%H:%M:%SZ"  # dates are UTC
DATE_KEYS = frozenset({"created", "status_change_date", "last_update", "delivered_date",
                       "tagged_at"})


def write_table(
    rows: Sequence[Mapping[str, object]],
    out: Path,
    *,
    columns: Sequence[str],
    sheet: str = "Table",
) -> Path:
    """Write *rows* to ``.xlsx``, ``.csv`` or ``.parquet`` (by suffix), atomically.

    In the workbook dates are real dates and every text stays text (never a formula).
    """
    suffix = out.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise UsageError(f"{out}: the output must end in .xlsx, .csv or .parquet")
    if suffix == ".xlsx":
        return _write_xlsx(rows, out, columns, sheet)
    frame = _frame(rows, columns)
    with atomic_path(out) as tmp:
        if suffix == ".csv":
            frame.write_csv(tmp, datetime_format=CSV_DATETIME)
        else:
            frame.write_parquet(tmp)
    return out


def _frame(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> pl.DataFrame:
    data: dict[str, list[object]] = {c: [row.get(c) for row in rows] for c in columns}
    series = []
    for name, values in data.items():
        if name in DATE_KEYS:
            values = [api_date(v) for v in values]
        try:
            series.append(pl.Series(name, values, strict=True))
        except (TypeError, pl.exceptions.PolarsError):
            # Mixed types (e.g. a field that is a number in one case, text in another).
            series.append(pl.Series(name, [None if v is None else str(v) for v in values],
                                    dtype=pl.String))
    return pl.DataFrame(series)


def api_date(value: object) -> object:
    """An API date (RFC 1123 or ISO 8601) as a UTC datetime; anything else unchanged."""
    if not isinstance(value, str) or not value:
        return value
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _kind(name: str, values: Iterator[object]) -> Column:
    if name in DATE_KEYS:
        return Column(name, "datetime", 22)
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return Column(name, "int", 14)
    return Column(name, "text", 80 if name in ("error", "report_files") else 40)


def _write_xlsx(
    rows: Sequence[Mapping[str, object]], out: Path, columns: Sequence[str], sheet: str
) -> Path:
    typed = [_kind(c, (row.get(c) for row in rows)) for c in columns]

    def cells(row: Mapping[str, object]) -> list[object]:
        return [api_date(row.get(c.name)) if c.kind == "datetime" else row.get(c.name)
                for c in typed]

    def build(book: Any, formats: Any) -> None:
        add_sheet(book, formats, sheet, typed,
                  [(cells(row), "failed" if row.get("error") else None) for row in rows])

    return write_workbook(out, build)
