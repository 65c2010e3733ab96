"""``pull finalized``: the cases whose status changed since a time (every page), their reports
downloaded, and one table of them (``cases.xlsx`` and ``cases.csv``); since when (``--since``).

The table lists the files each case's folder holds, whichever pull downloaded them, with what
this pull did in words: a rerun that finds every report present lists the same files as the
pull that downloaded them. The workbook adds a Files sheet, one row per file (size, when
downloaded); file times are UTC, as the server's dates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from batch.api import Client
from batch.errors import UsageError
from batch.outputs import make_dir, write_table
from batch.outputs.table import Table
from batch.pull.paths import ReportFile
from batch.pull.reports import FINALIZED, CaseReports, Discovery, GivenIds, pull_case_reports
from batch.run.pool import run_pool
from batch.text import plural

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


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


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalizedOptions:
    """What ``pull finalized`` lists and downloads.

    *since* is an ISO 8601 datetime (see :func:`parse_since`); *statuses* filter the listing;
    *report_types* are report types, or ``("all",)``; *report_ids* are ids the user gives, by
    case (see ``batch.pull.reports``); a case named there is pulled even when not listed.
    """

    out: Path
    since: str | None = None
    statuses: tuple[str, ...] = (FINALIZED,)
    report_types: tuple[str, ...] = ("pdf",)
    concurrency: int = 8
    page_size: int = 100
    report_ids: GivenIds = field(default_factory=dict)

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
    listed = [str(hit["name"]) async for hit in client.list_cases(
        status=options.statuses, since=options.since, page_size=options.page_size)
        if hit.get("name")]  # names only: a long listing's hits are not all kept
    names = list(dict.fromkeys([*listed, *options.report_ids]))
    results: dict[str, CaseReports] = {}
    discovery = Discovery(client, dict(options.report_ids))

    async def work(case: str) -> None:
        results[case] = await pull_case_reports(client, case, out=options.out,
                                                report_types=options.report_types,
                                                discovery=discovery)

    make_dir(options.out)
    await run_pool(names, work, concurrency=options.concurrency)
    cases = [results[n] for n in names]
    rows = [_report_row(c, options.out) for c in cases]
    files = Table("Files", FILE_COLUMNS, [_file_row(c, f, options.out)
                                          for c in cases for f in c.on_disk])
    xlsx = write_table(rows, options.out / "cases.xlsx", columns=REPORT_COLUMNS, sheet="Cases",
                       more=[files])
    csv = write_table(rows, options.out / "cases.csv", columns=REPORT_COLUMNS)
    return PullResult(cases, xlsx, csv)


REPORT_COLUMNS = ("case", "status", "status_change_date", "created", "delivered_date",
                  "reports", "report_files", "report_bytes", "last_downloaded_at",
                  "downloaded", "already_present", "error")
FILE_COLUMNS = ("case", "file", "bytes", "downloaded_at")


def _report_row(case: CaseReports, out: Path) -> dict[str, object]:
    return {
        "case": case.case,
        "status": case.status,
        "status_change_date": case.status_change_date,
        "created": case.created,
        "delivered_date": case.delivered_date,
        "reports": in_words(len(case.on_disk), case.downloaded),
        "report_files": "; ".join(_relative(f, out) for f in case.on_disk) or None,
        "report_bytes": sum(f.size for f in case.on_disk) if case.on_disk else None,
        "last_downloaded_at": max((f.modified for f in case.on_disk), default=None),
        "downloaded": case.downloaded,
        "already_present": case.present,
        "error": case.error,
    }


def _file_row(case: CaseReports, file: ReportFile, out: Path) -> dict[str, object]:
    return {"case": case.case, "file": _relative(file, out), "bytes": file.size,
            "downloaded_at": file.modified}


def _relative(file: ReportFile, out: Path) -> str:
    return file.path.relative_to(out).as_posix()


def in_words(on_disk: int, downloaded: int) -> str:
    """How many reports a case has on disk and how many this pull downloaded, in words."""
    if on_disk == 0:
        return "no report on disk"
    have = f"{plural(on_disk, 'report')} on disk"
    if downloaded == 0:
        return f"{have}, {'all ' if on_disk > 1 else ''}there before this pull"
    if downloaded >= on_disk:
        return f"{have}, downloaded by this pull"
    return f"{have}: {downloaded} downloaded by this pull, {on_disk - downloaded} there before"
