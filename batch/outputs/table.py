"""Tables of server data (``pull`` outputs) as XLSX, CSV or Parquet, chosen by the suffix.

Rows are keyed by the API's names (``status_change_date``); the headers people see are Title
Case in every format (``Status Change Date``), as in the review workbook and the manifest. In
the workbook dates are real dates and every text stays text (never a formula); the CSV is
formula-safe, headers included (server keys are server text); CSV dates are UTC (``…Z``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch.errors import UsageError
from batch.outputs.files import atomic_path, csv_safe, unique
from batch.outputs.workbook import Column, Formats, add_sheet, write_workbook

if TYPE_CHECKING:
    import polars as pl

TABLE_SUFFIXES = (".xlsx", ".csv", ".parquet")
CSV_DATETIME = "%Y-%m-%dT%H:%M:%SZ"  # dates are UTC
DATE_KEYS = frozenset({"created", "status_change_date", "last_update", "delivered_date",
                       "tagged_at", "downloaded_at", "last_downloaded_at"})
#: Headers that the word rule below would get wrong.
HEADERS = {"hgvs_c": "HGVSc", "hgvs_p": "HGVSp"}  # as VEP and Ensembl name them
#: Words written in capitals (or as people spell them) in a header.
WORDS = {"id": "Id", "http": "HTTP", "url": "URL", "hgvs": "HGVS", "acmg": "ACMG", "cnv": "CNV",
         "snv": "SNV", "vcf": "VCF", "omim": "OMIM", "hpo": "HPO", "dna": "DNA", "rna": "RNA"}
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def header_of(key: str) -> str:
    """The Title Case header of an API key: ``status_change_date`` → ``Status Change Date``,
    ``creatorId`` → ``Creator Id``. A key that already reads as a header (a capital first) or
    holds other symbols than ``_``, ``-`` and spaces is kept as the server spells it."""
    if key in HEADERS:
        return HEADERS[key]
    if not key or key[0].isupper():
        return key
    words = _WORD.findall(key)
    if not words or "".join(words) != re.sub(r"[_\- ]", "", key):
        return key  # symbols a word rule would drop: keep the server's spelling
    return " ".join(WORDS.get(w.lower(), w[:1].upper() + w[1:]) for w in words)


def headers_of(keys: Sequence[str]) -> list[str]:
    """The headers of *keys*, in order, distinct (a later clash gets `` (2)``)."""
    return unique(header_of(k) for k in keys)


@dataclass(frozen=True, slots=True)
class Table:
    """One more sheet of a workbook table: its name, its column keys and its rows."""

    sheet: str
    columns: Sequence[str]
    rows: Sequence[Mapping[str, object]]


def write_table(
    rows: Sequence[Mapping[str, object]],
    out: Path,
    *,
    columns: Sequence[str],
    sheet: str = "Table",
    more: Sequence[Table] = (),
) -> Path:
    """Write *rows* to ``.xlsx``, ``.csv`` or ``.parquet`` (by suffix), atomically.

    In the workbook dates are real dates and every text stays text (never a formula); *more*
    are sheets after the first, in the workbook only (a CSV or Parquet file holds one table).
    """
    suffix = out.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise UsageError(f"{out}: the output must end in .xlsx, .csv or .parquet")
    if suffix == ".xlsx":
        return _write_xlsx(out, [Table(sheet, columns, rows), *more])
    frame = _frame(rows, columns)
    frame = frame.rename(dict(zip(frame.columns, headers_of(columns), strict=True)))
    with atomic_path(out) as tmp:
        if suffix == ".csv":
            csv_safe(frame).write_csv(tmp, datetime_format=CSV_DATETIME)
        else:
            frame.write_parquet(tmp)
    return out


def _frame(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> pl.DataFrame:
    import polars as pl  # here, so that a command writing no table never loads polars

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


def _kind(key: str, header: str, values: Iterator[object]) -> Column:
    if key in DATE_KEYS:
        return Column(header, "datetime", 22)
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return Column(header, "int", 14)
    return Column(header, "text", 80 if key in ("error", "report_files") else 40)


def _write_xlsx(out: Path, tables: Sequence[Table]) -> Path:
    def build(book: Any, formats: Formats) -> None:
        for table in tables:
            _add_table(book, formats, table)

    return write_workbook(out, build)


def _add_table(book: Any, formats: Formats, table: Table) -> None:
    typed = [_kind(key, header, (row.get(key) for row in table.rows))
             for key, header in zip(table.columns, headers_of(table.columns), strict=True)]
    keyed = list(zip(table.columns, typed, strict=True))

    def cells(row: Mapping[str, object]) -> list[object]:
        return [api_date(row.get(key)) if c.kind == "datetime" else row.get(key)
                for key, c in keyed]

    add_sheet(book, formats, table.sheet, typed,
              [(cells(row), "failed" if row.get("error") else None) for row in table.rows])
