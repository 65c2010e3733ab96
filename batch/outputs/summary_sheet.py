"""The review workbook's Summary sheet: a verdict in one sentence, what needs action, then the
counts and facts in words and units, with charts.

It opens with one sentence saying how the families stand ("2 of 3 families are done; 1 needs
action: 1 failed") and a "Needs action" list: each family that failed or whose outcome is
unknown, what went wrong, what to do, and a link to its row on the Failed or Unknown sheet.
Then the families by outcome (each family in exactly one: done, failed, outcome unknown, not
attempted, steps left), charted from those very cells; what the run did (cases created,
adopted, updated, skipped, requests, time); and where everything is. Runs over a minute with a
recorded timeline also get a chart of requests and 429s over time (see
:mod:`batch.outputs.charts`). The sheet prints one page wide, in landscape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from batch.ledger import STEPS, RunRecord
from batch.outputs.charts import outcome_chart, timeline, timeline_chart, timeline_sheet
from batch.outputs.facts import when
from batch.outputs.words import duration, plural
from batch.outputs.workbook import Formats, print_setup

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
