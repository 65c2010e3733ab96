"""``pull finalized``: the cases whose status changed since a time (every page), their reports
downloaded, and one table of them (``cases.xlsx`` and ``cases.csv``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from batch.api import Client
from batch.outputs import make_dir, write_table
from batch.pull.discover import Discovery, GivenIds
from batch.pull.reports import FINALIZED, CaseReports, pull_case_reports
from batch.run.pool import run_pool


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalizedOptions:
    """What ``pull finalized`` lists and downloads.

    *since* is an ISO 8601 datetime (see :func:`parse_since`); *statuses* filter the listing;
    *report_types* are report types, or ``("all",)``; *report_ids* are ids the user gives, by
    case (see ``batch.pull.discover``); a case named there is pulled even when not listed.
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
    hits = [hit async for hit in client.list_cases(
        status=options.statuses, since=options.since, page_size=options.page_size)]
    listed = [str(h["name"]) for h in hits if h.get("name")]
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
