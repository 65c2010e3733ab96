"""The reports of one case, downloaded into ``<out>/<case>/<type>-<id>.<ext>``.

What a case has is what its folder holds (``on_disk``), whichever pull downloaded it: a rerun
that finds every report present, or a case that fails this time, still shows its files.

Resumable by construction: a report is streamed to a ``.part`` file and renamed when complete,
so a file that exists is whole and is never fetched again; ``.part`` leftovers of a killed pull
are removed before a case is worked on (names, modes and links: ``batch.pull.paths``). Used by
``pull finalized`` and by the listener.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from batch.api import Client
from batch.errors import ApiError, AuthError, RetriesExhausted, TransientError, UnsafePath
from batch.pull.discover import Discovery, wanted
from batch.pull.paths import (
    ReportFile,
    case_folder,
    files_on_disk,
    present,
    report_path,
    save_report,
)

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
    (see ``batch.pull.discover``). Auth failures propagate (the whole pull stops); any other
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
