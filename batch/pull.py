"""Pulling data out of Emedgene in bulk: finalized cases with their reports, tagged variants
(candidates) and case info, through the same client, limiter and worker pool as ``run``.

Report downloads are resumable by construction: a report is streamed to ``<file>.part`` and
renamed when complete, so a file that exists is whole and is never fetched again; ``.part``
leftovers of a killed pull are removed before a case is worked on. Tables are written to a
temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import anyio
import polars as pl

from batch.client import Client
from batch.errors import ApiError, AuthError, RetriesExhausted, TransientError, UsageError
from batch.ledger import Ledger, default_path
from batch.manifest import read_manifest
from batch.pool import run_pool
from batch.workbook import Column, add_sheet, atomic_path, write_workbook

__all__ = [
    "CaseReports",
    "FinalizedOptions",
    "PullResult",
    "TableResult",
    "cases_from_ledger",
    "cases_from_manifest",
    "parse_report_types",
    "parse_since",
    "pull_candidates",
    "pull_case_reports",
    "pull_finalized",
    "pull_info",
    "report_path",
    "write_table",
]

FINALIZED = "finalized"
ALL_REPORTS = "all"
EXTENSIONS = {"pdf": ".pdf", "json": ".json"}
TABLE_SUFFIXES = (".xlsx", ".csv", ".parquet")
CSV_DATETIME = "%Y-%m-%dT%H:%M:%SZ"  # dates are UTC
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
_DATE_KEYS = frozenset({"created", "status_change_date", "last_update", "delivered_date",
                        "tagged_at"})


# --------------------------------------------------------------------------- options


def parse_since(value: str, *, now: datetime | None = None) -> str:
    """``24h``, ``7d``, ``30m`` (ago) or an ISO date/datetime, as an ISO 8601 UTC datetime.

    A date or datetime without a zone is read as UTC.
    """
    match = _DURATION.match(value)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        when = (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    else:
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise UsageError(
                f"--since {value!r}: expected a duration such as 24h, 7d, 30m, or an ISO date "
                "such as 2024-02-01 or 2024-02-01T08:00:00+01:00"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=0).isoformat()


def parse_report_types(values: Iterable[str]) -> tuple[str, ...]:
    """Report types from repeated or comma-separated options; ``("all",)`` means every type."""
    types: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip().lower()
            if item and item not in types:
                types.append(item)
    if not types:
        raise UsageError("--reports: name at least one report type (pdf, json, or all)")
    if ALL_REPORTS in types:
        return (ALL_REPORTS,)
    bad = [t for t in types if not re.fullmatch(r"[a-z0-9_-]+", t)]
    if bad:
        raise UsageError(f"--reports: not a report type: {', '.join(bad)}")
    return tuple(types)


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalizedOptions:
    """What ``pull finalized`` lists and downloads.

    *since* is an ISO 8601 datetime (see :func:`parse_since`); *statuses* filter the listing;
    *report_types* are report types, or ``("all",)``.
    """

    out: Path
    since: str | None = None
    statuses: tuple[str, ...] = (FINALIZED,)
    report_types: tuple[str, ...] = ("pdf",)
    concurrency: int = 8
    page_size: int = 100


# --------------------------------------------------------------------------- reports


def safe_name(name: str) -> str:
    """A case name usable as one path component (EMG names pass unchanged)."""
    cleaned = _UNSAFE_NAME.sub("_", name).strip(".")
    return cleaned or "_"


def report_path(out: Path, case: str, report_type: str, report_id: str | int) -> Path:
    """``<out>/<case>/<type>-<id>.<ext>``; the extension follows the type (else ``.bin``)."""
    ext = EXTENSIONS.get(report_type, ".bin")
    return out / safe_name(case) / f"{safe_name(report_type)}-{safe_name(str(report_id))}{ext}"


@dataclass(slots=True)
class CaseReports:
    """One case of a report pull: what the server says, which files exist, what went wrong."""

    case: str
    status: str | None = None
    status_change_date: str | None = None
    created: str | None = None
    delivered_date: str | None = None
    files: list[Path] = field(default_factory=list)
    downloaded: int = 0
    present: int = 0
    error: str | None = None
    #: The error may go away on a later try (connection, timeout, 429, 5xx).
    transient: bool = False

    @property
    def failed(self) -> bool:
        """True when the case has an error."""
        return self.error is not None


def _wanted(reports: Any, types: Sequence[str]) -> list[tuple[str, str]]:
    if not isinstance(reports, list):
        return []
    found = [(str(r.get("type")), str(r.get("id"))) for r in reports
             if isinstance(r, dict) and r.get("type") and r.get("id") is not None]
    return found if ALL_REPORTS in types else [r for r in found if r[0] in types]


def _clean_partials(folder: Path) -> None:
    """Remove ``.part`` files a killed pull left behind (complete files are never ``.part``)."""
    if folder.is_dir():
        for stale in folder.glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


async def pull_case_reports(
    client: Client,
    case: str,
    *,
    out: Path,
    report_types: Sequence[str] = ("pdf",),
    case_object: Mapping[str, Any] | None = None,
) -> CaseReports:
    """Download the reports of one case that are not on disk yet; never raises ApiError.

    The case object is read from the server unless given. Auth failures propagate (the
    whole pull stops); any other API failure becomes the case's ``error``.
    """
    result = CaseReports(case=case)
    try:
        data = case_object if case_object is not None else await client.get_case(case)
        _describe(result, data)
        wanted = _wanted(data.get("reports"), report_types)
        if not wanted:
            result.error = _no_reports(result.status, report_types)
            return result
        folder = out / safe_name(case)
        await anyio.to_thread.run_sync(_clean_partials, folder)
        folder.mkdir(parents=True, exist_ok=True)
        for report_type, report_id in wanted:
            await _fetch(client, result, out, report_type, report_id)
    except AuthError:
        raise
    except ApiError as err:
        result.error = _explain(err, result.status)
        result.transient = isinstance(err, TransientError | RetriesExhausted)
    return result


async def _fetch(client: Client, result: CaseReports, out: Path, kind: str, rid: str) -> None:
    dest = report_path(out, result.case, kind, rid)
    if dest.exists():
        result.present += 1
    else:
        try:
            await client.download_report(result.case, kind, rid, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                dest.with_name(dest.name + ".part").unlink()
            raise
        result.downloaded += 1
    result.files.append(dest)


def _describe(result: CaseReports, data: Mapping[str, Any]) -> None:
    for key in ("status", "status_change_date", "created", "delivered_date"):
        value = data.get(key)
        if value is not None:
            setattr(result, key, str(value))


def _no_reports(status: str | None, types: Sequence[str]) -> str:
    if status != FINALIZED:
        return (f"case is {status or 'of unknown status'}, not finalized: reports exist only "
                "for finalized cases")
    return f"no {' or '.join(types)} report on the case"


def _explain(err: ApiError, status: str | None) -> str:
    if err.status == 409 and status and status != FINALIZED:
        return f"case is {status}, not finalized: {err.message} (HTTP 409)"
    return f"{err.message} (HTTP {err.status})" if err.status else err.message


@dataclass(slots=True)
class PullResult:
    """What ``pull finalized`` did: one row per case, and the tables it wrote."""

    cases: list[CaseReports]
    xlsx: Path
    csv: Path

    @property
    def downloaded(self) -> int:
        """Reports downloaded by this pull."""
        return sum(c.downloaded for c in self.cases)

    @property
    def present(self) -> int:
        """Reports already on disk (not downloaded again)."""
        return sum(c.present for c in self.cases)

    @property
    def failed(self) -> int:
        """Cases with an error."""
        return sum(c.failed for c in self.cases)

    @property
    def exit_code(self) -> int:
        """0 when every case is complete, 1 when some failed."""
        return 1 if self.failed else 0


async def pull_finalized(client: Client, options: FinalizedOptions) -> PullResult:
    """List the cases whose status changed since ``options.since`` (every page) and download
    their reports into ``options.out``; write ``cases.xlsx`` and ``cases.csv`` there."""
    hits = [hit async for hit in client.list_cases(
        status=options.statuses, since=options.since, page_size=options.page_size)]
    names = list(dict.fromkeys(str(h["name"]) for h in hits if h.get("name")))
    results: dict[str, CaseReports] = {}

    async def work(case: str) -> None:
        results[case] = await pull_case_reports(client, case, out=options.out,
                                                report_types=options.report_types)

    options.out.mkdir(parents=True, exist_ok=True)
    await run_pool(names, work, concurrency=options.concurrency)
    cases = [results[n] for n in names]
    rows = [_report_row(c, options.out) for c in cases]
    xlsx = write_table(rows, options.out / "cases.xlsx", columns=REPORT_COLUMNS, sheet="Cases")
    csv = write_table(rows, options.out / "cases.csv", columns=REPORT_COLUMNS)
    return PullResult(cases, xlsx, csv)


REPORT_COLUMNS = ("case", "status", "status_change_date", "created", "delivered_date",
                  "report_files", "downloaded", "already_present", "error")


def _report_row(case: CaseReports, out: Path) -> dict[str, object]:
    return {
        "case": case.case,
        "status": case.status,
        "status_change_date": case.status_change_date,
        "created": case.created,
        "delivered_date": case.delivered_date,
        "report_files": "; ".join(str(f.relative_to(out)) for f in case.files),
        "downloaded": case.downloaded,
        "already_present": case.present,
        "error": case.error,
    }


# --------------------------------------------------------------------------- case lists


def cases_from_manifest(path: Path) -> list[str]:
    """Case names of a manifest: each family's ``Case Id``, else the case its ledger recorded.

    Families with neither are left out (they have no case yet).
    """
    manifest = read_manifest(path)
    recorded: dict[str, str] = {}
    ledger_path = default_path(path)
    if ledger_path.exists():
        with Ledger.open(ledger_path, create=False) as ledger:
            recorded = {f.family_id: f.case_name for f in ledger.iter_families() if f.case_name}
    names = [family.case_id or recorded.get(family.family_id) for family in manifest.families()]
    return list(dict.fromkeys(n for n in names if n))


def cases_from_ledger(path: Path) -> list[str]:
    """Every case name a ledger recorded, in manifest order."""
    with Ledger.open(path, create=False) as ledger:
        names = [f.case_name for f in ledger.iter_families() if f.case_name]
    return list(dict.fromkeys(names))


def split_cases(values: Iterable[str]) -> list[str]:
    """Case names from repeated or comma-separated options, duplicates dropped."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- candidates, info


INFO_COLUMNS = ("case", "status", "created", "creator", "creator_id", "last_update", "error")
CANDIDATE_COLUMNS = ("case", "gene", "variant", "tag", "transcript", "hgvs_c", "hgvs_p",
                     "zygosity", "tagged_by", "tagged_at", "status", "creator", "creator_id",
                     "created", "last_update", "error")


@dataclass(slots=True)
class TableResult:
    """Rows pulled for many cases, the file they went to, and how many cases failed."""

    rows: list[dict[str, object]]
    columns: tuple[str, ...]
    failed: list[str]
    out: Path | None = None

    @property
    def exit_code(self) -> int:
        """0 when every case was read, 1 when some failed."""
        return 1 if self.failed else 0


Reader = Callable[[str], Awaitable[list[dict[str, object]]]]


def _info_row(case: str, info: Mapping[str, Any]) -> dict[str, object]:
    creator = info.get("creator")
    creator = creator if isinstance(creator, dict) else {"name": creator}
    return {
        "case": case,
        "status": info.get("status"),
        "created": info.get("created"),
        "creator": creator.get("name"),
        "creator_id": creator.get("id"),
        "last_update": info.get("last_update"),
        "error": None,
    }


def _error_row(case: str, err: ApiError) -> dict[str, object]:
    return {"case": case, "error": f"{err.message} (HTTP {err.status})" if err.status
            else err.message}


async def _per_case(
    cases: Sequence[str], concurrency: int, read: Reader
) -> tuple[list[dict[str, object]], list[str]]:
    """Run ``read(case) -> rows`` over *cases* in the pool; rows come back in input order."""
    found: dict[str, list[dict[str, object]]] = {}
    failed: set[str] = set()

    async def work(case: str) -> None:
        try:
            found[case] = await read(case)
        except AuthError:
            raise
        except ApiError as err:
            failed.add(case)
            found[case] = [_error_row(case, err)]

    await run_pool(cases, work, concurrency=concurrency)
    rows = [row for case in cases for row in found.get(case, ())]
    return rows, [c for c in cases if c in failed]


async def pull_info(
    client: Client, cases: Sequence[str], *, concurrency: int = 8, out: Path | None = None
) -> TableResult:
    """Case info (status, creation time, creator, last update) of many cases, one row each."""

    async def read(case: str) -> list[dict[str, object]]:
        return [_info_row(case, await client.case_info(case))]

    rows, failed = await _per_case(cases, concurrency, read)
    result = TableResult(rows, INFO_COLUMNS, failed)
    if out is not None:
        result.out = write_table(rows, out, columns=INFO_COLUMNS, sheet="Cases")
    return result


async def pull_candidates(
    client: Client, cases: Sequence[str], *, concurrency: int = 8, out: Path | None = None
) -> TableResult:
    """The tagged variants of many cases in one table, each row with its case's info.

    A case without tagged variants still has one row (its info), so every case shows.
    """

    async def read(case: str) -> list[dict[str, object]]:
        info = _info_row(case, await client.case_info(case))
        hits = await client.candidates(case)
        return [{**info, **_flat(hit), "case": case} for hit in hits] or [info]

    rows, failed = await _per_case(cases, concurrency, read)
    extra = [k for row in rows for k in row if k not in CANDIDATE_COLUMNS]
    columns = (*CANDIDATE_COLUMNS[:-1], *dict.fromkeys(extra), CANDIDATE_COLUMNS[-1])
    result = TableResult(rows, columns, failed)
    if out is not None:
        result.out = write_table(rows, out, columns=columns, sheet="Candidates")
    return result


def _flat(hit: Mapping[str, Any]) -> dict[str, object]:
    """Scalars stay; nested values become JSON text (one cell each)."""
    return {str(k): v if v is None or isinstance(v, str | int | float | bool)
            else json.dumps(v, ensure_ascii=False) for k, v in hit.items()}


# --------------------------------------------------------------------------- tables


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
        if name in _DATE_KEYS:
            values = [_when(v) for v in values]
        try:
            series.append(pl.Series(name, values, strict=True))
        except (TypeError, pl.exceptions.PolarsError):
            # Mixed types (e.g. a field that is a number in one case, text in another).
            series.append(pl.Series(name, [None if v is None else str(v) for v in values],
                                    dtype=pl.String))
    return pl.DataFrame(series)


def _when(value: object) -> object:
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
    if name in _DATE_KEYS:
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
        return [_when(row.get(c.name)) if c.kind == "datetime" else row.get(c.name)
                for c in typed]

    def build(book: Any, formats: Any) -> None:
        add_sheet(book, formats, sheet, typed,
                  [(cells(row), "failed" if row.get("error") else None) for row in rows])

    return write_workbook(out, build)
