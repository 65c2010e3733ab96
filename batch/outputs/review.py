"""The review workbook (``<stem>_review.xlsx``): what a run leaves for people to open.

Sheets: Summary (a verdict, the families that need action, what the run did, a chart of
family outcomes), Failed (the original rows of failed families, ready to fix and re-run),
Unknown (outcome unknown, with what to do), Not attempted, Cases (every family), Problems when
validation found any, and Timeline (requests and 429s over a run longer than a minute, charted
on the Summary); a sheet with nothing in it is left out. Views of one ledger, after
Salesforce's success / error / unprocessed result sets.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch.ledger import FamilyRecord, Ledger, RunRecord, State
from batch.manifest import Family, Manifest
from batch.outputs.facts import (
    CASE_COLUMNS,
    case_of,
    case_row,
    fill_of,
    known_cases,
    label,
    link_note,
    ordered,
    problem_advice,
    problem_message,
    when,
)
from batch.outputs.results import output_file
from batch.outputs.summary_sheet import (
    ACTIONS_SHOWN,
    Action,
    Outcomes,
    Overview,
    SummarySheet,
    run_counts,
)
from batch.outputs.words import plural
from batch.outputs.workbook import Column, Fill, Formats, Sheet, add_sheet, write_workbook

ERRORS_COLUMN = "Errors"
CASE_ID_COLUMN = "Case Id"


class _Tally:
    """What the sheets need besides Cases, gathered in one pass over the ledger before any
    sheet is written (Summary and Failed come first; Cases is streamed after them)."""

    def __init__(self, scope: set[str] | None, *, live: bool = False) -> None:
        self.scope = scope
        self.live = live  # a run is going on: its steps being sent are in flight
        self.held: set[str] = set()
        self.pending: dict[str, FamilyRecord] = {}
        self.failed: list[FamilyRecord] = []
        self.unknown: list[FamilyRecord] = []
        self.outcomes = Outcomes()
        self.left_out = 0  # families of the ledger the manifest no longer has

    def add(self, record: FamilyRecord) -> None:
        if self.scope is not None and record.family_id not in self.scope:
            self.left_out += 1
            return
        states = {s.state for s in record.steps.values()}
        self.held.add(record.family_id)
        if states == {State.PENDING}:
            self.pending[record.family_id] = record
        if State.FAILED in states:
            self.failed.append(record)
            self.outcomes.failed += 1
        # in a run going on, a step being sent is in flight, not of unknown outcome
        elif states & ({State.UNKNOWN} if self.live else {State.UNKNOWN, State.SENDING}):
            self.unknown.append(record)
            self.outcomes.unknown += 1
        elif states == {State.SUCCEEDED}:
            self.outcomes.done += 1
        elif State.SUCCEEDED in states:
            self.outcomes.steps_left += 1


def write_review(
    ledger: Ledger,
    manifest: Manifest | None,
    out: Path,
    *,
    summary: Mapping[str, Any] | None = None,
    host: str | None = None,
    live: RunRecord | None = None,
) -> Path:
    """Write the review workbook: Summary, Failed, Unknown, Not attempted, Cases, Problems,
    Timeline; a sheet with nothing to show is left out.

    *out* is the file, or a directory to put ``<stem>_review.xlsx`` in (the manifest's stem, else
    the ledger's). *summary* is a run summary (``RunSummary.as_dict()``); without it the counts
    of the last run recorded in the ledger are shown; a summary with validation ``problems``
    adds a Problems sheet, one with a ``timeline`` of a run over a minute a Timeline sheet and
    its chart (see :mod:`batch.outputs.charts`). The Summary opens with a verdict and the
    families that need action, each linked to its row (see :mod:`batch.outputs.summary_sheet`).
    With a manifest, the sheets hold its families only: families the ledger holds that the
    manifest no longer has are counted on the Summary and left out. Times are local time. Rows
    of failed families are filled red, of families with an unknown outcome amber. The Link
    column links each case in the web app of *host*; for a sandbox on this computer it stays
    empty and the Summary says why (see ``facts.links_to_cases``). Every sheet prints one page
    wide. *live* is the run going on while the workbook is written: its steps being sent are
    shown in progress, not interrupted, and the Summary says when the counts were taken.

    The Failed sheet saved as CSV is a manifest that ``emg-batch run`` accepts: its first column
    is ``Errors`` (the official CLI's name, which the manifest reader ignores: any other name
    would be read as a custom field and sent), the manifest's columns keep their names, and a
    ``Case Id`` is filled in on the proband row of families whose case exists, so a re-run
    never creates it twice. Families with an unknown outcome are not in it on purpose: only a
    rerun against the same ledger reconciles them safely.
    """
    stem = manifest.path.stem if manifest is not None else ledger.path.name.split(".")[0]
    path = output_file(out, f"{stem}_review.xlsx")
    last = ledger.last_run("run") or ledger.last_run()
    host = host or (last.host if last else None)
    counts = run_counts(summary, last)

    def build(book: Any, formats: Formats) -> None:
        scope = set(manifest.family_ids) if manifest is not None else None
        tally = _Tally(scope, live=live is not None)
        for record in ledger.iter_families():  # families are streamed, never all held
            tally.add(record)
        failed = _failed_rows(ledger, manifest, tally.failed)
        unknown = list(_unknown_rows(tally.unknown, live=live is not None))
        not_attempted = _not_attempted_rows(tally, manifest)
        tally.outcomes.not_attempted = len(not_attempted)
        facts = _facts(ledger, manifest, host, last, tally.left_out)
        if live is not None:
            facts.insert(0, ("In progress", f"run {live.id} since {when(live.started_at)}; "
                                            f"this workbook shows it as of {when(time.time())}"))
        overview = Overview(counts, tally.outcomes, last=last, facts=facts)
        overview.actions = _actions(failed, unknown, len(not_attempted))
        first = SummarySheet(book, formats)
        first.write(overview)
        if failed.rows:
            add_sheet(book, formats, "Failed", failed.columns, failed.rows)
        if unknown:
            add_sheet(book, formats, "Unknown", UNKNOWN_COLUMNS, [(r, "unknown") for r in unknown])
        if not_attempted:
            add_sheet(book, formats, "Not attempted", NOT_ATTEMPTED_COLUMNS, not_attempted)
        _cases_sheet(book, formats, ledger, manifest, host, scope, live=live is not None)
        problems = list((summary or {}).get("problems") or [])
        if problems:
            add_sheet(book, formats, "Problems", (Column("Problem", max_width=120),),
                      [([str(p)], None) for p in problems])
        first.add_timeline(counts)

    return write_workbook(path, build)


def _facts(ledger: Ledger, manifest: Manifest | None, host: str | None,
           last: RunRecord | None, left_out: int) -> list[tuple[str, object]]:
    """The Summary's "Where" rows: host, manifest, ledger, and why something is not shown."""
    where = str(manifest.path) if manifest is not None else (last.manifest_path if last else None)
    facts: list[tuple[str, object]] = [("Host", host), ("Manifest", where),
                                       ("Ledger", str(ledger.path))]
    note = link_note(host)
    if note is not None:
        facts.append(("Links", note))
    if left_out:
        facts.append(("Not in the manifest", f"{plural(left_out, 'family')} of the ledger "
                      "that the manifest no longer has: left out of these sheets (emg-batch "
                      "export --ledger LEDGER --out FILE.xlsx shows every family)"))
    facts.append(("Times", "local time of this computer"))
    return facts


@dataclass(slots=True)
class _FailedRows:
    """The Failed sheet: its columns, rows, and the first row of each family (1-based, as
    a link names it)."""

    columns: list[Column]
    rows: list[tuple[Sequence[object], Fill]]
    first: dict[str, tuple[int, str]]  # family: (row, problem)
    todo: dict[str, str] = field(default_factory=dict)  # family: what to do


def _actions(failed: _FailedRows, unknown: Sequence[Sequence[object]],
             not_attempted: int) -> list[Action]:
    """The Summary's "Needs action" lines: failed families, then unknown ones, each linked to
    its row; then the families not attempted, as one line."""
    found: list[Action] = []
    for family, (row, problem) in failed.first.items():
        found.append(Action(family, f"internal:'Failed'!A{row}", f"Failed, row {row}",
                            problem, failed.todo[family]))
    seen: set[object] = set()
    for row, values in enumerate(unknown, start=2):
        if values[0] not in seen:
            seen.add(values[0])
            found.append(Action(str(values[0]), f"internal:'Unknown'!A{row}",
                                f"Unknown, row {row}", str(values[7] or INTERRUPTED),
                                str(values[8])))
    shown = found[:ACTIONS_SHOWN]
    if len(found) > len(shown):
        first = shown[-1]
        shown.append(Action(f"{len(found) - len(shown)} more", first.link.split("!")[0] + "!A1",
                            first.where.split(",")[0], "see that sheet", "as listed there"))
    if not_attempted:
        shown.append(Action(plural(not_attempted, "family"), "internal:'Not attempted'!A1",
                            "Not attempted", "not attempted (the run stopped first, or they "
                            "were left out as invalid)", "Rerun the same command."))
    return shown


def _cases_sheet(book: Any, formats: Formats, ledger: Ledger, manifest: Manifest | None,
                 host: str | None, scope: set[str] | None, *, live: bool) -> None:
    """The Cases sheet, one row per family (of the manifest, when given), streamed."""
    known = known_cases(manifest)
    cases = Sheet(book, formats, "Cases", CASE_COLUMNS)
    for record in ledger.iter_families():
        if scope is None or record.family_id in scope:
            cases.add(case_row(record, host, known.get(record.family_id), live=live),
                      fill=fill_of(record, live=live))
    cases.finish()


def _failed_rows(ledger: Ledger, manifest: Manifest | None,
                 failed: Sequence[FamilyRecord]) -> _FailedRows:
    entries = [(r, _family_of(manifest, r.family_id)) for r in failed]
    rows_of = [(r, _rows_of(r, ledger, family)) for r, family in entries]
    header = _failed_header(manifest, rows_of)
    cells = header[1:]
    rows: list[tuple[Sequence[object], Fill]] = []
    # narrower than other sheets: a manifest has two dozen columns, printed one page wide
    found = _FailedRows([Column(ERRORS_COLUMN, max_width=60),
                         *(Column(c, max_width=30) for c in cells)],
                        rows, {})
    for (record, family), (_, family_rows) in zip(entries, rows_of, strict=True):
        message = problem_message(record)
        found.first[record.family_id] = (len(rows) + 2, message or "")
        found.todo[record.family_id] = problem_advice(record)
        case = case_of(record)
        proband = _proband_number(family_rows, family)
        for number, values in family_rows:
            row = dict(values)
            if case and number == proband and not row.get(CASE_ID_COLUMN):
                row[CASE_ID_COLUMN] = case
            rows.append(([message, *(row.get(c, "") for c in cells)], "failed"))
    return found


def _family_of(manifest: Manifest | None, family_id: str) -> Family | None:
    if manifest is None:
        return None
    try:
        return manifest.family(family_id)
    except KeyError:  # the ledger may hold families the edited manifest no longer has
        return None


def _rows_of(record: FamilyRecord, ledger: Ledger,
             family: Family | None) -> list[tuple[int, Mapping[str, str]]]:
    """The original rows of a family: from the manifest when given, else as the ledger kept them."""
    if family is not None:
        return [(r.number, r.cells) for r in family.rows]
    stored = ledger.family_rows(record.family_id) or []
    rows: list[tuple[int, Mapping[str, str]]] = [
        (int(r.get("number") or 0), dict(r.get("cells") or {})) for r in stored]
    # a family without its rows still gets a line: the Summary links to it
    return rows or [(0, {"Family Id": record.family_id})]


def _proband_number(rows: Sequence[tuple[int, Mapping[str, str]]],
                    family: Family | None) -> int | None:
    if family is not None and family.proband is not None:
        return family.proband.number
    for number, cells in rows:
        if (cells.get("Relation") or "").strip() in ("", "proband"):
            return number
    return rows[0][0] if rows else None


def _failed_header(manifest: Manifest | None,
                   entries: Sequence[tuple[FamilyRecord, Sequence[tuple[int, Mapping[str, str]]]]],
                   ) -> list[str]:
    """``Errors``, ``Case Id`` (when needed), then the manifest's columns, names unchanged."""
    if manifest is not None:
        columns = list(manifest.columns)
    else:
        seen: dict[str, None] = {}
        for _, rows in entries:
            for _, cells in rows:
                seen.update(dict.fromkeys(cells))
        columns = list(seen)
    columns = [c for c in columns if c != ERRORS_COLUMN]
    needs_case = any(case_of(r) for r, _ in entries)
    if needs_case and CASE_ID_COLUMN not in columns:
        columns.insert(0, CASE_ID_COLUMN)
    return [ERRORS_COLUMN, *columns]


NOT_ATTEMPTED_COLUMNS = (Column("Family Id"), Column("Proband BioSample"),
                         Column("First Row", "int"), Column("Rows", "int"),
                         Column("Reason", max_width=60))
NOT_IN_LEDGER = "not in the ledger (not run yet, or left out as invalid)"


def _not_attempted_rows(tally: _Tally, manifest: Manifest | None,
                        ) -> list[tuple[Sequence[object], Fill]]:
    if manifest is None:
        return [([fid, r.proband_sample or None, None, None, "pending"], None)
                for fid, r in tally.pending.items()]
    rows: list[tuple[Sequence[object], Fill]] = []
    for fid in manifest.family_ids:
        reason = (NOT_IN_LEDGER if fid not in tally.held
                  else "pending" if fid in tally.pending else None)
        if reason:
            family = manifest.family(fid)  # built only for the families listed
            first = family.rows[0].number if family.rows else None
            rows.append(([fid, family.proband_sample or None, first, len(family.rows), reason],
                         None))
    return rows


UNKNOWN_COLUMNS = (Column("Family Id"), Column("Proband BioSample"), Column("Case"),
                   Column("Step"), Column("State"), Column("Attempts", "int"),
                   Column("Since", "datetime"), Column("Message", max_width=80),
                   Column("What To Do", max_width=80))
UNKNOWN_ADVICE = {
    "create": "Rerun the same command: the case is looked up by the proband's BioSample and "
              "adopted if it exists, before anything is sent again.",
    "preset_group": "Rerun the same command: the presets the case shows are checked before "
                    "the group is created again. If the case cannot tell, the family needs "
                    "review: check the case in Emedgene, then clear its Preset Group cells (the "
                    "group is there) or rerun with --resend-unknown preset_group (it is not).",
}
DEFAULT_ADVICE = "Rerun the same command: the step is tried again."
INTERRUPTED = "interrupted while the request was in flight"


def _unknown_rows(records: Iterable[FamilyRecord], *,
                  live: bool) -> Iterator[Sequence[object]]:
    shown = (State.UNKNOWN,) if live else (State.UNKNOWN, State.SENDING)
    for record in records:
        for name in ordered(record.steps):
            step = record.steps[name]
            if step.state not in shown:
                continue
            message = step.error_message or (INTERRUPTED if step.state is State.SENDING
                                             else None)
            yield [record.family_id, record.proband_sample or None, case_of(record),
                   label(name), str(step.state), step.attempts, when(step.updated_at),
                   message, UNKNOWN_ADVICE.get(name, DEFAULT_ADVICE)]
