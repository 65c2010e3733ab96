"""The review workbook's Summary: outcome rows, units, and native charts read back with openpyxl."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from batch import outputs
from batch.ledger import Ledger, State
from batch.manifest import Manifest, read_manifest
from batch.outputs import review as charts
from batch.outputs.review import intervals, samples
from tests import ledgers

HEADER = "Family Id,Case Type,Files Names,BioSample Name,Sex"
OUTCOME_LABELS = ["Done", "Failed", "Outcome unknown", "Not attempted"]


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    rows = "".join(f"F{i},Whole Genome,s3://b/{i}.fastq.gz,S{i},male\n" for i in range(6))
    path = tmp_path / "m.csv"
    path.write_text(HEADER + "\n" + rows, encoding="utf-8")
    return read_manifest(path)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """F0, F1 created; F2 failed; F3 pending; F4, F5 never registered."""
    with Ledger.open(tmp_path / "m.ledger.sqlite") as opened:
        opened.add_families([ledgers.family(f"F{i}", i, sample=f"S{i}") for i in range(4)])
        for fid in ("F0", "F1"):
            opened.set_step(fid, "create", State.SUCCEEDED, http_status=201, case_name=fid)
        opened.set_step("F2", "create", State.FAILED, http_status=400,
                        error_class="PermanentError", error_message="no")
        yield opened


def _series(chart: Any) -> list[tuple[str, list[float], str, list[Any]]]:
    """(values formula, cached values, categories formula, cached categories) per series."""
    found = []
    for series in chart.series:
        values = (series.val or series.yVal).numRef
        cats = series.cat or series.xVal
        ref = cats.strRef or cats.numRef
        cache = ref.strCache if getattr(ref, "strCache", None) is not None else ref.numCache
        found.append((values.f, [float(p.v) for p in values.numCache.pt], ref.f,
                      [p.v for p in cache.pt]))
    return found


def _title(chart: Any) -> str:
    return "".join(r.t for p in chart.title.tx.rich.p for r in (p.r or []))


def _summary(path: Path) -> tuple[Any, dict[str, Any]]:
    book = openpyxl.load_workbook(path)
    return book, {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if r[0]}


def _xml(path: Path, member: str) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read(member).decode()


def test_outcome_chart_is_drawn_from_the_outcome_rows(ledger: Ledger, manifest: Manifest,
                                                      tmp_path: Path) -> None:
    """One bar per family outcome: the bars add up to the families (a family created whose
    next step failed is one failed family, not a created one and a failed one)."""
    summary = {"families": 6, "created": 2, "adopted": 0, "updated": 0, "skipped": 0,
               "failed": 1, "unknown": 0, "elapsed": 0.1884902569999838}
    out = outputs.write_review(ledger, manifest, tmp_path, summary=summary)
    book, rows = _summary(out)
    assert rows["Elapsed"] == "0.2 s"
    ws = book["Summary"]
    first = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "Done")
    labels = [ws.cell(r, 1).value for r in range(first, first + 4)]
    counts = [ws.cell(r, 2).value for r in range(first, first + 4)]
    assert labels == OUTCOME_LABELS
    not_attempted = book["Not attempted"].max_row - 1  # F3 pending, F4 and F5 not registered
    assert counts == [2, 1, 0, not_attempted] and not_attempted == 3
    assert sum(counts) == rows["Families in all"] == 6
    [chart] = ws._charts
    assert type(chart).__name__ == "BarChart" and _title(chart) == "Families by outcome"
    [(values, cached, categories, cached_labels)] = _series(chart)
    assert values == f"Summary!$B${first}:$B${first + 3}"
    assert categories == f"Summary!$A${first}:$A${first + 3}"
    assert cached == [float(n) for n in counts] and cached_labels == OUTCOME_LABELS
    assert "Timeline" not in book.sheetnames
    axis = chart.y_axis  # a bar chart's value axis runs across
    assert (axis.scaling.min, axis.scaling.max, axis.majorUnit) == (0, 4, 1)  # whole families
    assert axis.numFmt.formatCode == "0"
    # each bar is labelled with its count alone: every flag written, not only the true ones
    xml = _xml(out, "xl/charts/chart1.xml")
    for flag, value in (("showVal", 1), ("showCatName", 0), ("showSerName", 0),
                        ("showLegendKey", 0)):
        assert f'<c:{flag} val="{value}"/>' in xml, flag


def test_whole_number_steps() -> None:
    assert [charts._whole_step([n]) for n in (0, 3, 5, 6, 40, 1000)] == [1, 1, 1, 2, 8, 200]
    assert [charts._axis_top([n]) for n in (0, 3, 5, 6, 40)] == [1, 4, 6, 8, 48]


def test_without_a_summary_the_last_run_is_charted(ledger: Ledger, manifest: Manifest,
                                                   tmp_path: Path) -> None:
    run = ledger.begin_run("run", manifest_path=str(manifest.path), host=None, options={})
    timeline = [[5.0 * i, 10 * i, i // 4] for i in range(1, 25)]
    ledger.end_run(run, exit_code=1, counts={"families": 6, "created": 2, "failed": 1,
                                             "elapsed": 121.5, "timeline": timeline})
    book, rows = _summary(outputs.export(ledger, tmp_path / "all.xlsx", manifest=manifest))
    assert rows["Cases created"] == 2 and rows["Elapsed"] == "2 min 02 s"
    assert book.sheetnames[-1] == "Timeline"
    assert len(book["Summary"]._charts) == 2


def test_a_long_run_gets_a_chart_over_time(ledger: Ledger, manifest: Manifest,
                                           tmp_path: Path) -> None:
    # 10 requests every 5 s (120 a minute); a 429 in every other interval (6 a minute)
    timeline = [[0, 0, 0]] + [[5.0 * i, 10 * i, i // 2] for i in range(1, 25)]
    timeline.append([120.3, 242, 12])  # the closing sample, a moment after the last tick
    summary = {"families": 6, "created": 2, "failed": 1, "elapsed": 120.4, "requests": 242,
               "rate_limited": 12, "timeline": timeline}
    book, _ = _summary(outputs.write_review(ledger, manifest, tmp_path, summary=summary))
    data = list(book["Timeline"].iter_rows(values_only=True))
    assert data[0] == ("Minutes Since Start", "Requests", "429s", "Requests Per Minute",
                       "429s Per Minute")
    assert len(data) - 1 == 24  # the closing sample merged into the last interval
    assert data[1] == (0.083, 10, 0, 120, 0) and data[2] == (0.167, 10, 1, 120, 12)
    assert sum(r[1] for r in data[1:]) == 242 and sum(r[2] for r in data[1:]) == 12
    assert data[-1][0] == round(120.3 / 60, 3)
    _, over_time = book["Summary"]._charts
    assert type(over_time).__name__ == "ScatterChart"
    # straight lines: a flat rate is drawn flat (without the element, LibreOffice smooths)
    xml = _xml(tmp_path / "m_review.xlsx", "xl/charts/chart2.xml")
    assert xml.count('<c:smooth val="0"/>') == 2 and 'c:smooth val="1"' not in xml
    assert _title(over_time) == "Requests and 429s over time"
    (requests, req_cache, minutes, _), (limited, lim_cache, _, _) = _series(over_time)
    assert requests == "Timeline!$D$2:$D$25" and limited == "Timeline!$E$2:$E$25"
    assert minutes == "Timeline!$A$2:$A$25"
    assert req_cache == [float(r[3]) for r in data[1:]]
    assert lim_cache == [float(r[4]) for r in data[1:]]


def test_a_short_run_has_no_chart_over_time(ledger: Ledger, manifest: Manifest,
                                            tmp_path: Path) -> None:
    summary = {"families": 6, "elapsed": 59.0,
               "timeline": [[5.0 * i, i, 0] for i in range(1, 12)]}
    book, _ = _summary(outputs.write_review(ledger, manifest, tmp_path, summary=summary))
    assert "Timeline" not in book.sheetnames and len(book["Summary"]._charts) == 1


def test_samples_that_do_not_fit_are_left_out() -> None:
    raw = [[5, 10, 0], "x", [10, 20], [float("nan"), 1, 1], [3, 30, 0], [15, 5, 0],
           [True, 1, 1], [20, 40, 2], None]
    assert samples(raw) == [(0.0, 0, 0), (5.0, 10, 0), (20.0, 40, 2)]
    assert samples("not a list") == [(0.0, 0, 0)]
    assert intervals(None) == []


def test_a_day_long_timeline_is_thinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(charts, "MAX_POINTS", 100)
    raw = [[5.0 * i, 3 * i, i // 10] for i in range(1, 17_281)]  # 24 h at 5 s
    found = intervals(raw)
    assert len(found) <= 101
    assert sum(i.requests for i in found) == 3 * 17_280
    assert found[-1].end == 5.0 * 17_280
