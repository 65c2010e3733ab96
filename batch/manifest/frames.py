"""Typed columns (Parquet, XLSX cells) as the text a CSV would hold.

The official CLI reads text: a number is its digits, a date the text the user typed. Typed
values become the text that the official rules accept for the same content:

* an integral float loses its ``.0`` (1.0 written by a LIMS means 1);
* a date is ``YYYY-MM-DD``; a date-time at midnight too (Excel and most exports store a date
  as a date-time at 00:00);
* a date-time with a time of day keeps it (``YYYY-MM-DD HH:MM:SS``), so ``Date Of Birth`` and
  ``Due Date`` refuse it by the official date rule rather than lose the time silently.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

_MIDNIGHT = dt.time(0, 0)


def float_text(column: pl.Expr) -> pl.Expr:
    """A float column as text; whole numbers without ``.0``."""
    whole = column.is_finite() & (column % 1 == 0)
    return (
        pl.when(whole)
        .then(column.cast(pl.Int64, strict=False).cast(pl.String))
        .otherwise(column.cast(pl.String))
    )


def datetime_text(column: pl.Expr) -> pl.Expr:
    """A date-time column as text: ``YYYY-MM-DD`` at midnight, else with the time of day."""
    return (
        pl.when(column.dt.time() == _MIDNIGHT)
        .then(column.dt.strftime("%Y-%m-%d"))
        .otherwise(column.dt.strftime("%Y-%m-%d %H:%M:%S%.f"))
    )


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column of *frame* as text (see the module docstring); nulls stay null."""
    columns: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if dtype.is_float():
            columns.append(float_text(column).alias(name))
        elif isinstance(dtype, pl.Datetime):
            columns.append(datetime_text(column).alias(name))
        else:
            columns.append(column.cast(pl.String, strict=False))
    return frame.select(columns)
