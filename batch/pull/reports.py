"""One case's reports: which report types are wanted, which reports a case has, and their
downloads.

Which report types (``--report-type``, ``all`` by default).

Which reports a case has: report ids found by every route public material allows.

How report ids are found is not public (the download route, ``GET /api/test/v2/{case}/reports/
{type}/{id}``, is; the real case object carries no report ids). So, in order:

1. ids the user gave for the case (``--report-id CASE:TYPE:ID`` or a ``--report-ids`` file):
   used as they are, no look-up;
2. ids on the case object (a ``reports`` list of ``{"id", "type"}``), where a tenant has them;
3. a report listing (``GET /api/test/v2/{case}/reports``, inferred), where the tenant answers
   one; a tenant that does not (404) is not asked again in the same pull.

When none gives an id, the case says so in plain words, with what to do.

The reports of one case, downloaded into ``<out>/<case>/<type>-<id>.<ext>``.

What a case has is what its folder holds (``on_disk``), whichever pull downloaded it: a rerun
that finds every report present, or a case that fails this time, still shows its files.

Resumable by construction: a report is streamed to a ``.part`` file and renamed when complete,
so a file that exists is whole and is never fetched again; ``.part`` leftovers of a killed pull
are removed before a case is worked on (names, modes and links: ``batch.pull.paths``). Used by
``pull finalized`` and by the listener.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from batch.api import Client
from batch.errors import (
    ApiError,
    AuthError,
    RetriesExhausted,
    TransientError,
    UnsafePath,
    UsageError,
)
from batch.pull.paths import (
    ReportFile,
    case_folder,
    files_on_disk,
    present,
    report_path,
    save_report,
)
from batch.text import quoted

ALL_REPORTS = "all"


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


ReportId = tuple[str, str]
GivenIds = dict[str, tuple[ReportId, ...]]
ID_COLUMNS = ("Case Id", "Report Type", "Report Id")
NO_IDS = ("this tenant lists no report ids on the case and answers no report listing; give "
          "them with --report-id {case}:pdf:<id> (or a --report-ids file with the columns "
          "Case Id, Report Type, Report Id)")


@dataclass(frozen=True, slots=True)
class Found:
    """The reports of one case, and which route named them (None when none did)."""

    ids: tuple[ReportId, ...]
    route: str | None


@dataclass(slots=True)
class Discovery:
    """Finds report ids for the cases of one pull; remembers what the tenant does not serve."""

    client: Client
    given: Mapping[str, tuple[ReportId, ...]] = field(default_factory=dict)
    listing_served: bool | None = None

    async def find(self, case: str, data: Mapping[str, Any]) -> Found:
        """The ids of *case* (whose case object is *data*), by the first route that has any."""
        if case in self.given:
            return Found(self.given[case], "given")
        on_case = _ids(data.get("reports"))
        if on_case:
            return Found(on_case, "case object")
        if self.listing_served is not False:
            listed = await self.client.report_listing(case)
            self.listing_served = listed is not None
            if listed:
                return Found(_ids(listed), "report listing")
        return Found((), None)

    def missing(self, case: str) -> str:
        """Why no report of *case* can be named, and what to do."""
        if self.listing_served:
            return "the server lists no report for this case"
        return NO_IDS.format(case=case)


def wanted(found: Found, types: Sequence[str]) -> list[ReportId]:
    """The ids of the asked report types (all of them for ``all``)."""
    return list(found.ids) if ALL_REPORTS in types else [r for r in found.ids if r[0] in types]


def _ids(reports: Any) -> tuple[ReportId, ...]:
    if not isinstance(reports, list):
        return ()
    return tuple((str(r.get("type")), str(r.get("id"))) for r in reports
                 if isinstance(r, dict) and r.get("type") and r.get("id") is not None)


def parse_report_ids(values: Iterable[str], files: Iterable[Path] = ()) -> GivenIds:
    """Report ids the user gives: ``CASE:TYPE:ID`` values and CSV files with the columns
    ``Case Id``, ``Report Type``, ``Report Id``."""
    found: dict[str, list[ReportId]] = {}
    for value in values:
        parts = [p.strip() for p in value.split(":")]
        if len(parts) != 3 or not all(parts):
            raise UsageError(f"--report-id {quoted(value)}: expected CASE:TYPE:ID, e.g. "
                             "EMG100000001:pdf:700001")
        found.setdefault(parts[0], []).append((parts[1].lower(), parts[2]))
    for path in files:
        for case, report in _rows(path):
            found.setdefault(case, []).append(report)
    return {case: tuple(dict.fromkeys(ids)) for case, ids in found.items()}


def _rows(path: Path) -> Iterable[tuple[str, ReportId]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"--report-ids {path}: cannot be read ({exc})") from None
    if rows and not set(ID_COLUMNS) <= set(rows[0]):
        raise UsageError(f"--report-ids {path}: needs the columns {', '.join(ID_COLUMNS)}")
    for number, row in enumerate(rows, start=2):
        case, kind, rid = (str(row.get(c) or "").strip() for c in ID_COLUMNS)
        if not (case and kind and rid):
            raise UsageError(f"--report-ids {path}:{number}: Case Id, Report Type and Report Id "
                             "are all needed")
        yield case, (kind.lower(), rid)


FINALIZED = "finalized"


@dataclass(slots=True)
class CaseReports:
    """One case of a report pull: what the server says, which files exist, what went wrong.

    *files* are the reports this pull asked for (downloaded now or already there); *on_disk*
    every complete file the case's folder holds after the pull (see ``files_on_disk``).
    """

    case: str
    status: str | None = None
    status_change_date: str | None = None
    created: str | None = None
    delivered_date: str | None = None
    files: list[Path] = field(default_factory=list)
    on_disk: list[ReportFile] = field(default_factory=list)
    downloaded: int = 0
    present: int = 0
    error: str | None = None
    #: The error may go away on a later try (connection, timeout, 429, 5xx).
    transient: bool = False

    @property
    def failed(self) -> bool:
        """True when the case has an error."""
        return self.error is not None


async def pull_case_reports(
    client: Client,
    case: str,
    *,
    out: Path,
    report_types: Sequence[str] = ("pdf",),
    case_object: Mapping[str, Any] | None = None,
    discovery: Discovery | None = None,
) -> CaseReports:
    """Download the reports of one case that are not on disk yet; never raises ApiError.

    The case object is read from the server unless given; report ids come from *discovery*
    (see ``batch.pull.reports``). Auth failures propagate (the whole pull stops); any other
    API failure, and a case whose reports cannot be named, becomes the case's ``error``.
    Whatever happened, ``on_disk`` lists what the case's folder holds afterwards (OutputError
    when it cannot be read).
    """
    result = CaseReports(case=case)
    try:
        await _pull(client, result, out, report_types, case_object,
                    discovery or Discovery(client))
    except AuthError:
        raise
    except ApiError as err:
        result.error = _explain(err, result.status)
        result.transient = isinstance(err, TransientError | RetriesExhausted)
    except UnsafePath as err:
        result.error = str(err)
    try:
        result.on_disk = await anyio.to_thread.run_sync(files_on_disk, out, case)
    except UnsafePath as err:
        result.error = result.error or str(err)
    return result


async def _pull(client: Client, result: CaseReports, out: Path, report_types: Sequence[str],
                case_object: Mapping[str, Any] | None, discovery: Discovery) -> None:
    data = case_object if case_object is not None else await client.get_case(result.case)
    _describe(result, data)
    ids = await _ids_to_pull(discovery, result, data, report_types)
    if ids:
        await anyio.to_thread.run_sync(case_folder, out, result.case)
    for report_type, report_id in ids:
        await _fetch(client, result, out, report_type, report_id)


async def _fetch(client: Client, result: CaseReports, out: Path, kind: str, rid: str) -> None:
    dest = report_path(out, result.case, kind, rid)
    if present(dest):
        result.present += 1
    else:
        await save_report(client, result.case, kind, rid, dest)
        result.downloaded += 1
    result.files.append(dest)


def _describe(result: CaseReports, data: Mapping[str, Any]) -> None:
    for key in ("status", "status_change_date", "created", "delivered_date"):
        value = data.get(key)
        if value is not None:
            setattr(result, key, str(value))


async def _ids_to_pull(discovery: Discovery, result: CaseReports, data: Mapping[str, Any],
                       types: Sequence[str]) -> list[tuple[str, str]]:
    """The report ids to download; none (with the case's error set) when there are none."""
    if result.status is not None and result.status != FINALIZED:
        result.error = (f"case is {result.status}, not finalized: reports exist only for "
                        "finalized cases")
        return []
    found = await discovery.find(result.case, data)
    ids = wanted(found, types)
    if not found.ids:
        result.error = discovery.missing(result.case)
    elif not ids:
        kinds = ", ".join(sorted({kind for kind, _ in found.ids}))
        result.error = f"no {' or '.join(types)} report on the case (it has: {kinds})"
    return ids


def _explain(err: ApiError, status: str | None) -> str:
    if err.status == 409 and status and status != FINALIZED:
        return f"case is {status}, not finalized: {err.message} (HTTP 409)"
    return f"{err.message} (HTTP {err.status})" if err.status else err.message
