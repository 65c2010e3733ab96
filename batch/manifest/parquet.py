"""Parquet manifests: column names are the header, a null cell is absent; and typed columns
(Parquet, XLSX cells) as the text a CSV would hold.

Only scalar columns make manifest cells: text, numbers, booleans, dates and times. A list,
struct, binary or other column is refused before any row is read, naming the column, its type
and what is expected (polars' own cast error names neither row nor column).

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
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl

from batch.errors import ReadFailure
from batch.manifest.store import Cell, RawManifest, assemble
from batch.text import clip

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


_BATCH_ROWS = 10_000
_EXPECTED = "text, number, boolean or date expected"


def read_parquet(path: Path) -> RawManifest:
    """Read a Parquet manifest (batches of rows: the table is never held as Python objects)."""
    try:
        schema = pl.read_parquet_schema(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _unreadable(exc) from None
    _check_types(schema)
    names = list(schema)
    # An official CSV converted as is has "[Data]" as its first column name.
    official = bool(names) and names[0].strip() == "[Data]"
    try:
        raw = assemble(_with_first(names, _rows(path)), kind="parquet", trim=True,
                       data_row=official)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _unreadable(exc) from None
    raw.first_column = None
    return raw


def _unreadable(exc: BaseException) -> ReadFailure:
    detail = clip(" ".join(str(exc).split()), 200)
    return ReadFailure(f"not a readable Parquet file ({detail})")


def is_scalar(dtype: pl.DataType) -> bool:
    """Whether a column of *dtype* can be read as manifest cells."""
    if dtype.is_numeric() or isinstance(dtype, pl.Datetime | pl.Categorical | pl.Enum):
        return True
    return dtype in (pl.String, pl.Boolean, pl.Date, pl.Time, pl.Null)


def _check_types(schema: dict[str, pl.DataType]) -> None:
    wrong = [(name, dtype) for name, dtype in schema.items() if not is_scalar(dtype)]
    if not wrong:
        return
    name, dtype = wrong[0]
    more = f" (and {len(wrong) - 1} more such columns)" if len(wrong) > 1 else ""
    hint = ("store text as UTF-8 strings, not bytes" if dtype == pl.Binary
            else "one value per cell; join several values with ';' in one text cell")
    raise ReadFailure(f"the column holds {_kind(dtype)}: {_EXPECTED}{more}", row=1, column=name,
                      hint=hint)


def _kind(dtype: pl.DataType) -> str:
    """What a column of *dtype* holds, in words, with polars' name of the type."""
    name = clip(str(dtype))
    if isinstance(dtype, pl.List | pl.Array):
        return f"lists ({name})"
    if isinstance(dtype, pl.Struct):
        return f"records of several fields ({name})"
    if dtype == pl.Binary:
        return f"bytes ({name})"
    return f"values of type {name}"


def _rows(path: Path) -> Iterator[tuple[int, Sequence[Cell]]]:
    number = 2
    for batch in pl.scan_parquet(path).collect_batches(chunk_size=_BATCH_ROWS):
        for row in as_text(batch).iter_rows():
            yield number, row
            number += 1


def _with_first(
    names: list[str], rows: Iterator[tuple[int, Sequence[Cell]]]
) -> Iterator[tuple[int, Sequence[Cell]]]:
    yield 1, names
    yield from rows
