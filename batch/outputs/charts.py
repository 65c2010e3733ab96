"""The review workbook's native charts: family outcomes, and requests and 429s over time.

Charts are drawn by the spreadsheet program from cells of the workbook (Excel, LibreOffice
and Numbers redraw them when a value is edited); each series also carries its values, so a
viewer that does not calculate shows the same picture.

The time series comes from the run summary (``RunSummary.as_dict()``, or the counts the ledger
kept of the last run) under ``"timeline"``: a list of ``[seconds, requests, rate_limited]``
samples, where *seconds* is the time since the run started and *requests* and
*rate_limited* (HTTP 429 answers) are counted from the start (the client's counters), one
sample about every 5 seconds and one at the end, in time order. Samples that do not fit that
shape (not three finite numbers, time or counts going backwards) are left out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batch.outputs.workbook import Column, Formats, Sheet, add_sheet

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
