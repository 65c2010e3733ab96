"""The review workbook (``<stem>_review.xlsx``): what a run leaves for people to open, its
Summary sheet and its native charts.

Sheets: Summary (a verdict, the families that need action, what the run did, a chart of
family outcomes), Failed (the original rows of failed families, ready to fix and re-run),
Unknown (outcome unknown, with what to do), Not attempted, Cases (every family), Problems when
validation found any, and Timeline (requests and 429s over a run longer than a minute, charted
on the Summary); a sheet with nothing in it is left out. Views of one ledger, after
Salesforce's success / error / unprocessed result sets.

The Summary opens with one sentence saying how the families stand ("2 of 3 families are done;
1 needs action: 1 failed") and a "Needs action" list: each family that failed or whose outcome
is unknown, what went wrong, what to do, and a link to its row on the Failed or Unknown sheet.
Then the families by outcome (each family in exactly one: done, failed, outcome unknown, not
attempted, steps left), charted from those very cells; what the run did (cases created,
adopted, updated, skipped, requests, time); and where everything is. Runs over a minute with a
recorded timeline also get a chart of requests and 429s over time. The sheet prints one page
wide, in landscape.

Charts are drawn by the spreadsheet program from cells of the workbook (Excel, LibreOffice
and Numbers redraw them when a value is edited); each series also carries its values, so a
viewer that does not calculate shows the same picture. The time series comes from the run
summary (``RunSummary.as_dict()``, or the counts the ledger kept of the last run) under
``"timeline"``: a list of ``[seconds, requests, rate_limited]`` samples, where *seconds* is
the time since the run started and *requests* and *rate_limited* (HTTP 429 answers) are
counted from the start (the client's counters), one sample about every 5 seconds and one at
the end, in time order. Samples that do not fit that shape (not three finite numbers, time or
counts going backwards) are left out.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch.ledger import STEPS, FamilyRecord, Ledger, RunRecord, State
from batch.manifest import Family, Manifest
from batch.outputs.outcomes import (
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
from batch.outputs.workbook import (
    Column,
    Fill,
    Formats,
    Sheet,
    add_sheet,
    print_setup,
    write_workbook,
)
from batch.text import duration, plural

#: The outcome bars (done, failed, outcome unknown, not attempted, steps left), coloured as
#: the rows of the sheets are: failed red, unknown amber.
OUTCOME_COLOURS = ("#70AD47", "#E46C5A", "#FFC000", "#BFBFBF", "#5B9BD5")
#: Runs shorter than this get no chart over time: a minute is a dozen samples.
TIMELINE_AFTER = 60.0
#: Points per line at most; longer runs are drawn from fewer, wider intervals.
MAX_POINTS = 2_000
#: A last sample closer than this to the one before is merged with it (the final sample a
#: moment after the last tick would otherwise draw a spike: 3 requests in 0.1 s is 1,800 a
#: minute).
MIN_GAP = 1.0
TIMELINE_SHEET = "Timeline"
TIMELINE_COLUMNS = (Column("Minutes Since Start", "float"), Column("Requests", "int"),
                    Column("429s", "int"), Column("Requests Per Minute", "float"),
                    Column("429s Per Minute", "float"))
CHART_SIZE = {"x_scale": 1.2, "y_scale": 1.2}
#: The outcome chart, with the chart over time beside it (one band of the printed page).
OUTCOME_SIZE = {"x_scale": 1.0, "y_scale": 1.2}


def outcome_chart(book: Any, sheet: Any, first: int, labels: Sequence[str],
                  values: Sequence[int], *, at: int) -> None:
    """A bar per family outcome, drawn from the Summary rows *first*.. (0-based, label in
    column A, count in B) of *sheet*, placed at row *at*. The bars add up to the families;
    the axis counts in whole families; each bar shows its count and nothing else."""
    chart = book.add_chart({"type": "bar"})
    last = first + len(labels) - 1
    chart.add_series({
        "name": "Families",
        "categories": [sheet.name, first, 0, last, 0],
        "values": [sheet.name, first, 1, last, 1],
        "categories_data": list(labels),
        "values_data": list(values),
        "points": [{"fill": {"color": c}, "border": {"color": "#7F7F7F"}}
                   for c in OUTCOME_COLOURS[:len(labels)]],
        "data_labels": {"value": True},
        "gap": 60,
    })
    _value_labels_only(chart)
    chart.set_title({"name": "Families by outcome"})
    chart.set_legend({"none": True})
    chart.set_y_axis({"reverse": True})  # the categories read top to bottom, as the rows
    chart.set_x_axis({"name": "Families", "min": 0, "max": _axis_top(values),
                      "major_unit": _whole_step(values), "num_format": "0",
                      "major_gridlines": {"visible": True}})
    sheet.worksheet.insert_chart(at, 0, chart, OUTCOME_SIZE)


def _whole_step(values: Sequence[int]) -> int:
    """A whole-number step for an axis of counts: at most about 5 gridlines."""
    return max(1, math.ceil(max(values, default=0) / 5))


def _axis_top(values: Sequence[int]) -> int:
    """The axis end: a whole number of steps past the largest count (room for its label)."""
    step = _whole_step(values)
    return step * (max(values, default=0) // step + 1)


def _value_labels_only(chart: Any) -> None:
    """Write every flag of the data labels, not only the set ones.

    xlsxwriter leaves the false flags out, and LibreOffice takes a missing ``showCatName`` or
    ``showSerName`` as true: its labels read "Created; Families; 3". The schema's order is
    legend key, value, category name, series name, percent, bubble size."""
    def write() -> None:
        for tag, value in (("c:showLegendKey", "0"), ("c:showVal", "1"), ("c:showCatName", "0"),
                           ("c:showSerName", "0"), ("c:showPercent", "0"),
                           ("c:showBubbleSize", "0")):
            chart._xml_empty_tag(tag, [("val", value)])

    chart._write_show_val = write


def _straight(chart: Any) -> None:
    """Write ``<c:smooth val="0"/>`` on every line: xlsxwriter writes the element only when
    true, and LibreOffice smooths a scatter line without it (waves where the rate was flat)."""
    def write(smooth: bool | None) -> None:
        chart._xml_empty_tag("c:smooth", [("val", "1" if smooth else "0")])

    chart._write_c_smooth = write


@dataclass(frozen=True, slots=True)
class Interval:
    """What happened between two samples of the timeline."""

    end: float  # seconds since the start
    seconds: float
    requests: int
    rate_limited: int

    def row(self) -> list[object]:
        """The interval's row of the Timeline sheet (``TIMELINE_COLUMNS``)."""
        per_minute = 60.0 / self.seconds
        return [round(self.end / 60, 3), self.requests, self.rate_limited,
                round(self.requests * per_minute, 1), round(self.rate_limited * per_minute, 1)]


def samples(raw: object) -> list[tuple[float, int, int]]:
    """The well-formed samples of a ``"timeline"`` value, starting from ``(0, 0, 0)``."""
    found = [(0.0, 0, 0)]
    for item in raw if isinstance(raw, list | tuple) else ():
        sample = _sample(item)
        if sample is None:
            continue
        last = found[-1]
        if sample[0] > last[0] and sample[1] >= last[1] and sample[2] >= last[2]:
            found.append(sample)
    return found


def _sample(item: object) -> tuple[float, int, int] | None:
    if not isinstance(item, list | tuple) or len(item) != 3:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in item):
        return None
    seconds, requests, limited = item
    if not all(math.isfinite(v) for v in item):
        return None
    return float(seconds), int(requests), int(limited)


def intervals(raw: object) -> list[Interval]:
    """The timeline as intervals, at most ``MAX_POINTS`` (neighbours merged when longer)."""
    found = samples(raw)
    step = max(1, math.ceil((len(found) - 1) / MAX_POINTS))
    kept = found[::step]
    if kept[-1] != found[-1]:
        kept.append(found[-1])
    if len(kept) > 2 and kept[-1][0] - kept[-2][0] < MIN_GAP:
        del kept[-2]
    return [Interval(b[0], b[0] - a[0], b[1] - a[1], b[2] - a[2])
            for a, b in itertools.pairwise(kept)]


def timeline(counts: Mapping[str, Any]) -> list[Interval]:
    """The intervals to draw for a run summary; none for a run of a minute or less."""
    found = intervals(counts.get("timeline"))
    elapsed = counts.get("elapsed")
    length = elapsed if isinstance(elapsed, int | float) else (found[-1].end if found else 0)
    return found if len(found) >= 2 and length > TIMELINE_AFTER else []


def timeline_sheet(book: Any, formats: Formats, found: Sequence[Interval]) -> Sheet:
    """The Timeline sheet: one row per interval, the data of the chart over time."""
    return add_sheet(book, formats, TIMELINE_SHEET, TIMELINE_COLUMNS,
                     [(i.row(), None) for i in found])


def timeline_chart(book: Any, summary: Any, found: Sequence[Interval], *, at: int) -> None:
    """Requests and 429s per minute over the run, on the Summary sheet at row *at*, beside
    the outcome chart, drawn straight from point to point."""
    chart = book.add_chart({"type": "scatter", "subtype": "straight"})
    _straight(chart)
    last = len(found)
    minutes = [i.row()[0] for i in found]
    for col, name, colour in ((3, "Requests per minute", "#5B9BD5"),
                              (4, "429s per minute", "#E46C5A")):
        chart.add_series({
            "name": name,
            "categories": [TIMELINE_SHEET, 1, 0, last, 0],
            "values": [TIMELINE_SHEET, 1, col, last, col],
            "categories_data": minutes,
            "values_data": [i.row()[col] for i in found],
            "line": {"color": colour, "width": 1.5},
        })
    chart.set_title({"name": "Requests and 429s over time"})
    chart.set_x_axis({"name": "Minutes since start", "min": 0})
    chart.set_y_axis({"name": "Per minute", "min": 0, "major_gridlines": {"visible": True}})
    chart.set_legend({"position": "bottom"})
    summary.worksheet.insert_chart(at, 2, chart, {**CHART_SIZE, "x_offset": 150})


#: Column widths (characters): labels and families, numbers and links, problem, what to do.
WIDTHS = (28, 20, 55, 55)
#: The height of a line of text (points), for rows of wrapped text: spreadsheet programs do
#: not grow a row to fit its wrapped text when they open a file.
LINE_HEIGHT = 15
#: Families listed under "Needs action" at most; the rest are counted, with a link.
ACTIONS_SHOWN = 20
#: The count keys of a run summary, for the status report.
COUNT_KEYS = ("families", "created", "adopted", "updated", "skipped", "failed", "unknown",
              "changed", "invalid")
#: An action step done to a case, as a countable noun.
UPDATES = {"assign": "assignment", "preset_group": "preset group",
           "set_status": "status change"}


@dataclass(slots=True)
class Outcomes:
    """The workbook's families, each counted under one outcome."""

    done: int = 0
    failed: int = 0
    unknown: int = 0
    not_attempted: int = 0
    #: Created, with later steps still pending (the run stopped between them).
    steps_left: int = 0

    @property
    def total(self) -> int:
        """Every family."""
        return self.done + self.failed + self.unknown + self.not_attempted + self.steps_left

    def rows(self) -> list[tuple[str, int]]:
        """The outcome rows in chart order (steps left only when there are any)."""
        rows = [("Done", self.done), ("Failed", self.failed),
                ("Outcome unknown", self.unknown), ("Not attempted", self.not_attempted)]
        return rows + ([("Steps left", self.steps_left)] if self.steps_left else [])


@dataclass(frozen=True, slots=True)
class Action:
    """One line of "Needs action": a family (or a group), where it is, why, what to do."""

    family: str
    link: str  # an internal link: "internal:'Failed'!A2"
    where: str  # the link's text: "Failed, row 2"
    problem: str
    todo: str


@dataclass(slots=True)
class Overview:
    """Everything the Summary sheet shows."""

    counts: Mapping[str, Any]
    outcomes: Outcomes
    actions: list[Action] = field(default_factory=list)
    facts: list[tuple[str, object]] = field(default_factory=list)
    last: RunRecord | None = None


def verdict(overview: Overview) -> str:
    """How the families stand, in one sentence (and why the run stopped, when it did)."""
    o, counts = overview.outcomes, overview.counts
    stopped = counts.get("stopped")
    head = ("The run was interrupted (Ctrl-C). " if stopped == "interrupted" else
            f"The run stopped early: {counts.get('stop_reason')}. " if stopped else "")
    if o.total == 0:
        return head + "No family has been run yet."
    created = _count(counts, "created")
    made = f" This run created {plural(created, 'case')}." if created else ""
    if o.done == o.total:
        every = "The one family is" if o.total == 1 else f"All {o.total} families are"
        return f"{head}{every} done.{made}"
    parts = [text for n, text in ((o.failed, f"{o.failed} failed"),
                                  (o.unknown, f"{o.unknown} with an unknown outcome"),
                                  (o.not_attempted, f"{o.not_attempted} not attempted"),
                                  (o.steps_left, f"{o.steps_left} with steps left")) if n]
    left = o.total - o.done
    needs = "needs" if left == 1 else "need"
    return (f"{head}{o.done} of {plural(o.total, 'family')} "
            f"{'is' if o.done == 1 else 'are'} done; {left} {needs} action: "
            f"{', '.join(parts)} (listed below).{made}")


class SummarySheet:
    """The Summary sheet, written top to bottom (the workbook streams its rows)."""

    def __init__(self, book: Any, formats: Formats) -> None:
        self._book = book
        self._formats = formats
        self._ws = book.add_worksheet("Summary")
        self.row = 0

    @property
    def name(self) -> str:
        """The sheet's name."""
        return str(self._ws.name)

    @property
    def worksheet(self) -> Any:
        """The xlsxwriter worksheet (to draw a chart on it)."""
        return self._ws

    def write(self, overview: Overview) -> None:
        """The whole sheet: verdict, needs action, outcomes and their chart, the run, where."""
        for col, width in enumerate(WIDTHS):
            self._ws.set_column(col, col, width)
        self._ws.set_row(0, 36)
        self._ws.merge_range(0, 0, 0, len(WIDTHS) - 1, verdict(overview),
                             self._formats.get("title"))
        self.row = 2
        self._actions(overview.actions)
        first = self._outcomes(overview.outcomes)
        self._run(overview.counts, overview.last)
        self._facts(overview.facts)
        rows = overview.outcomes.rows()
        outcome_chart(self._book, self, first, [t for t, _ in rows], [n for _, n in rows],
                      at=self.row + 1)
        print_setup(self._ws, sum(WIDTHS))

    def add_timeline(self, counts: Mapping[str, Any]) -> None:
        """For a run over a minute with a timeline: the Timeline sheet (call it last: it is
        the last tab) and its chart on this sheet, beside the outcome chart."""
        found = timeline(counts)
        if found:
            timeline_sheet(self._book, self._formats, found)
            timeline_chart(self._book, self, found, at=self.row + 1)

    # -- sections ----------------------------------------------------------------------------

    def _heading(self, text: str, *columns: str) -> None:
        self._ws.write_string(self.row, 0, text, self._formats.get("heading"))
        self.row += 1
        for col, name in enumerate(columns):
            self._ws.write_string(self.row, col, name, self._formats.get("header"))
        self.row += 1 if columns else 0

    def _actions(self, actions: Sequence[Action]) -> None:
        if not actions:
            return
        self._heading("Needs action", "Family Id", "Where", "Problem", "What To Do")
        wrap = self._formats.get("wrap")
        for action in actions:
            self._fit(action.problem, WIDTHS[2], action.todo, WIDTHS[3])
            self._ws.write_string(self.row, 0, action.family, wrap)
            self._ws.write_url(self.row, 1, action.link, self._formats.get("internal"),
                               string=action.where)
            self._ws.write_string(self.row, 2, action.problem, wrap)
            self._ws.write_string(self.row, 3, action.todo, wrap)
            self.row += 1
        self.row += 1

    def _outcomes(self, outcomes: Outcomes) -> int:
        """The families by outcome; the row of the first outcome (for the chart)."""
        self._heading("Families")
        first = self.row
        for text, n in outcomes.rows():
            self._pair(text, n)
        self._pair("Families in all", outcomes.total)
        self.row += 1
        return first

    def _run(self, counts: Mapping[str, Any], last: RunRecord | None) -> None:
        self._heading("This run" if last is None or last.command == "run" else "Last run")
        self._pair("Cases created", _count(counts, "created"))
        for key, text in (("adopted", "Cases adopted (already there)"),
                          ("changed", "Edited after creation (not re-created)"),
                          ("invalid", "Invalid, left out (--skip-invalid)")):
            if _count(counts, key):
                self._pair(text, _count(counts, key))
        self._pair("Cases updated", _count(counts, "updated"), _updates(counts.get("actions")))
        self._pair("Skipped (done before)", _count(counts, "skipped"))
        for key, text in (("requests", "Requests"), ("retries", "Retries"),
                          ("rate_limited", "Rate limited (HTTP 429)")):
            self._pair(text, _count(counts, key))
        elapsed = counts.get("elapsed")
        if isinstance(elapsed, int | float) and not isinstance(elapsed, bool):
            self._pair("Elapsed", duration(float(elapsed)))
        if last is not None:
            self._pair("Started", when(last.started_at))
            self._pair("Ended", when(last.ended_at) or "not recorded (still running, or killed)")
        self.row += 1

    def _facts(self, facts: Sequence[tuple[str, object]]) -> None:
        self._heading("Where")
        for text, value in facts:
            self._pair(text, value)

    def _fit(self, *texts_and_widths: str | int) -> None:
        """Make the current row tall enough for its wrapped texts (text, width, ...)."""
        pairs = zip(texts_and_widths[::2], texts_and_widths[1::2], strict=True)
        lines = max(math.ceil(len(str(text)) / (int(width) - 3)) for text, width in pairs)
        if lines > 1:
            self._ws.set_row(self.row, LINE_HEIGHT * lines)

    def _pair(self, text: str, value: object, note: str | None = None) -> None:
        """A label and its value; text values (and *note*) span the columns after it."""
        ws, formats = self._ws, self._formats
        ws.write_string(self.row, 0, text, formats.get("label"))
        if isinstance(value, int | float) and not isinstance(value, bool):
            ws.write_number(self.row, 1, value, formats.get("count"))
        elif value is not None and hasattr(value, "isoformat"):
            ws.write_datetime(self.row, 1, value, formats.get("when"))
        elif value is not None:
            self._fit(str(value), sum(WIDTHS[1:]))
            ws.merge_range(self.row, 1, self.row, len(WIDTHS) - 1, str(value),
                           formats.get("wrap"))
        if note:
            ws.write_string(self.row, 2, note)
        self.row += 1


def _updates(actions: object) -> str | None:
    """``2 assignments, 1 status change``: what the updates were."""
    if not isinstance(actions, Mapping) or not actions:
        return None
    return ", ".join(plural(int(actions[s]), UPDATES.get(s, s)) for s in STEPS
                     if isinstance(actions.get(s), int) and actions[s])


def _count(counts: Mapping[str, Any], key: str) -> int:
    value = counts.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def run_counts(summary: Mapping[str, Any] | None, last: RunRecord | None) -> Mapping[str, Any]:
    """The run's counts: the summary given, else the last run the ledger recorded."""
    if summary is not None:
        return summary
    return (last.counts if last else None) or {}


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
    its chart. The Summary opens with a verdict and the families that need action, each
    linked to its row (see the module docstring).
    With a manifest, the sheets hold its families only: families the ledger holds that the
    manifest no longer has are counted on the Summary and left out. Times are local time. Rows
    of failed families are filled red, of families with an unknown outcome amber. The Link
    column links each case in the web app of *host*; for a sandbox on this computer it stays
    empty and the Summary says why (see ``outcomes.links_to_cases``). Every sheet prints one page
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
