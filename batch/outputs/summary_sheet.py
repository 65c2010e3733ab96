"""The review workbook's Summary sheet: what the run did, in words and units, with charts.

The first rows are the family outcomes (created, adopted, updated, skipped, failed, unknown,
not attempted): the bar chart beside them is drawn from those very cells. The outcome counts
are the run's (``RunSummary``); "not attempted" is the number of rows of the Not attempted
sheet (families the ledger holds as pending, or does not hold). A family whose case was
created and whose next step failed counts as created and as failed, as in the run's summary
line. Runs over a minute with a recorded timeline also get a chart of requests and 429s over
time (see :mod:`batch.outputs.charts`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from batch.ledger import Ledger, RunRecord
from batch.manifest import Manifest
from batch.outputs.charts import outcome_chart, timeline, timeline_chart, timeline_sheet
from batch.outputs.facts import label, sorted_counts, when
from batch.outputs.words import duration
from batch.outputs.workbook import Column, Formats, Sheet

SUMMARY_COLUMNS = (Column("Item", max_width=40), Column("Value", "any", max_width=80))
#: The outcome rows, in chart order: summary key and label.
OUTCOMES = (("created", "Created"), ("adopted", "Adopted"), ("updated", "Updated"),
            ("skipped", "Skipped (done before)"), ("failed", "Failed"),
            ("unknown", "Unknown outcome"))
NOT_ATTEMPTED = "Not attempted"
#: The other counts and facts of a run summary, with their labels.
DETAILS = (("changed", "Edited after creation"), ("invalid", "Invalid"),
           ("requests", "Requests"), ("retries", "Retries"),
           ("rate_limited", "Rate limited (HTTP 429)"), ("elapsed", "Elapsed"),
           ("dry_run", "Dry run"), ("exit_code", "Exit code"), ("stopped", "Stopped"),
           ("stop_reason", "Stop reason"))
#: Row of the first outcome (0-based; row 0 is the header, row 1 the family count).
FIRST_OUTCOME = 2
#: The count keys of a run summary, for the status report.
COUNT_KEYS = ("families", "created", "adopted", "updated", "skipped", "failed", "unknown",
              "changed", "invalid")


class SummarySheet:
    """The Summary sheet, made first (it is the first tab) and filled once the counts that
    need the Cases pass are known."""

    def __init__(self, book: Any, formats: Formats) -> None:
        self._book = book
        self._formats = formats
        self.sheet = Sheet(book, formats, "Summary", SUMMARY_COLUMNS)

    def fill(self, counts: Mapping[str, Any], *, not_attempted: int,
             rows: list[list[object]]) -> None:
        """Write the outcome rows, *rows* after them, and draw the outcome chart."""
        outcomes = [(text, _count(counts, key)) for key, text in OUTCOMES]
        outcomes.append((NOT_ATTEMPTED, not_attempted))
        self.sheet.add(["Families", _count(counts, "families")])
        for text, n in outcomes:
            self.sheet.add([text, n])
        for values in rows:
            self.sheet.add(values)
        self.sheet.finish()
        outcome_chart(self._book, self.sheet, FIRST_OUTCOME, [t for t, _ in outcomes],
                      [n for _, n in outcomes])

    def add_timeline(self, counts: Mapping[str, Any]) -> None:
        """For a run over a minute with a timeline: the Timeline sheet (the last tab) and
        its chart on this sheet."""
        found = timeline(counts)
        if found:
            timeline_sheet(self._book, self._formats, found)
            timeline_chart(self._book, self.sheet, found)


def _count(counts: Mapping[str, Any], key: str) -> int:
    value = counts.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def run_counts(summary: Mapping[str, Any] | None, last: RunRecord | None) -> Mapping[str, Any]:
    """The run's counts: the summary given, else the last run the ledger recorded."""
    if summary is not None:
        return summary
    return (last.counts if last else None) or {}


def detail_rows(ledger: Ledger, manifest: Manifest | None, counts: Mapping[str, Any],
                host: str | None, last: RunRecord | None) -> list[list[object]]:
    """The rows after the outcomes: the run's other counts, the plan, the ledger's totals,
    the run's times and options, and where everything is."""
    rows = [[text, _value(key, counts[key])] for key, text in DETAILS if key in counts]
    rows += [[f"Plan: {k}", v] for k, v in sorted(dict(counts.get("plan") or {}).items())]
    rows += _ledger_totals(ledger)
    if last is not None:
        rows += [["Run started", when(last.started_at)], ["Run ended", when(last.ended_at)]]
        rows += [[f"Option: {label(k)}", _plain(v)] for k, v in sorted(last.options.items())]
    where = str(manifest.path) if manifest is not None else (last.manifest_path if last else None)
    rows += [["Host", host], ["Manifest", where], ["Ledger", str(ledger.path)],
             ["Times", "local time of this computer"]]
    return rows


def _value(key: str, value: object) -> object:
    """A summary value as a cell: the elapsed time with its unit, the rest as it is."""
    if key == "elapsed" and isinstance(value, int | float) and not isinstance(value, bool):
        return duration(float(value))
    return _plain(value)


def _plain(value: object) -> object:
    """Values as cells: numbers, flags and text stay; anything else becomes JSON text."""
    if value is None or isinstance(value, int | float | str):
        return value
    return json.dumps(value, default=str)


def _ledger_totals(ledger: Ledger) -> list[list[object]]:
    rows: list[list[object]] = [["Ledger: families", ledger.family_count()]]
    for step, states in sorted_counts(ledger.step_counts()).items():
        for state, n in states.items():
            rows.append([f"Ledger: {label(step)} {state}", n])
    return rows
