"""Which reports a case has: report ids found by every route public material allows.

How report ids are found is not public (the download route, ``GET /api/test/v2/{case}/reports/
{type}/{id}``, is; the real case object carries no report ids). So, in order:

1. ids the user gave for the case (``--report-id CASE:TYPE:ID`` or a ``--report-ids`` file):
   used as they are, no look-up;
2. ids on the case object (a ``reports`` list of ``{"id", "type"}``), where a tenant has them;
3. a report listing (``GET /api/test/v2/{case}/reports``, inferred), where the tenant answers
   one; a tenant that does not (404) is not asked again in the same pull.

When none gives an id, the case says so in plain words, with what to do.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch.api import Client
from batch.errors import UsageError
from batch.pull.options import ALL_REPORTS
from batch.text import quoted

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
