"""What a run leaves for people: the results CSV, the review workbook, exports, status, templates.

Three views of one ledger, after Salesforce's success / error / unprocessed result sets:

* ``<stem>_results.csv``: the official CLI's results file (``Case Id`` on each proband row,
  ``Errors`` on the rows of families that failed), re-runnable as a manifest;
* ``<stem>_review.xlsx``: a Summary, every family (Cases), the original rows of failed families
  ready to fix and re-run (Failed), families never attempted (Not attempted) and families whose
  outcome is unknown (Unknown);
* ``status``: counts by step and state and failures grouped by reason, from aggregate SQL only.

Spreadsheet safety: manifest values are data. The workbook keeps formula-looking text as text
(see ``batch.workbook``); the CSV export prefixes text cells that start with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return with a single quote (OWASP's advice against CSV injection). The
results CSV is the exception, on purpose: it is the official CLI's format and is meant to be run
again, so its cells must stay byte for byte what the manifest holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from batch.ledger import STEPS, FamilyRecord, Ledger, RunRecord, State, StepRecord
from batch.workbook import Column, Fill, Formats, Sheet, add_sheet, atomic_path, write_workbook

if TYPE_CHECKING:
    from batch.manifest import Family, Manifest

STEP_TITLES = {"create": "Create", "assign": "Assign", "preset_group": "Preset group",
               "set_status": "Set status"}
STATE_ORDER = tuple(str(s) for s in State)
# Cells starting with these are read as formulas by spreadsheet programs (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The results CSV and the Failed sheet use the official CLI's column: the manifest reader
# ignores it, so a fixed sheet saved as CSV runs again without the messages becoming data.
ERRORS_COLUMN = "Errors"
CASE_ID_COLUMN = "Case Id"
# The 23 columns of the official batch CSV, in the official template's order.
OFFICIAL_TEMPLATE_COLUMNS = (
    "Family Id", "Case Type", "Files Names", "Sample Type", "BioSample Name",
    "Visualization Files", "Storage Provider Id", "Default Project", "Execute Now", "Relation",
    "Sex", "Phenotypes", "Phenotypes Id", "Date Of Birth", "Boost Genes", "Gene List Id",
    "Kit Id", "Intersect Bed Id", "Selected Preset", "Label Id", "Clinical Notes", "Due Date",
    "Opt In",
)
UPDATE_TEMPLATE_COLUMNS = ("Case Id", "Assign To", "Set Status", "Preset Group",
                           "Preset Gene Lists")
TEMPLATE_HELP = (
    "batch_template.csv: one row per family member under the header; rows with the same "
    "Family Id make one case. update_template.csv: one row per existing case (Case Id) with the "
    "actions to run on it. Both files are header-only: every row you add is sent."
)
COUNT_KEYS = ("families", "created", "adopted", "updated", "skipped", "failed", "unknown",
              "changed", "invalid")
SUMMARY_KEYS = (*COUNT_KEYS, "requests", "retries", "rate_limited", "elapsed", "dry_run",
                "exit_code", "stopped", "stop_reason")

CASE_COLUMNS: tuple[Column, ...] = (
    Column("Family Id"),
    Column("Proband BioSample"),
    Column("Case"),
    *(Column(STEP_TITLES[s], max_width=14) for s in STEPS),
    Column("Attempts", "int"),
    Column("Last error", max_width=80),
    Column("HTTP status", "int"),
    Column("Link", "link"),
    Column("Updated", "datetime"),
)
CASE_SCHEMA: dict[str, pl.DataType] = {
    **{c.name: pl.String() for c in CASE_COLUMNS},
    "Attempts": pl.Int64(), "HTTP status": pl.Int64(), "Updated": pl.Datetime("us"),
}


def case_url(host: str, case: str) -> str:
    """Where *case* opens in the Emedgene web app: ``{host}/case/{case}``.

    This address is inferred from how the web app links to cases; the API reference does not
    document it. A trailing slash on *host* is dropped.
    """
    return f"{host.rstrip('/')}/case/{case}"


# --------------------------------------------------------------------------- per-family facts


def _when(ts: float | None) -> datetime | None:
    """A ledger time (epoch seconds) as a naive local datetime, the form spreadsheets show."""
    return None if ts is None else datetime.fromtimestamp(ts)


def _problem_step(record: FamilyRecord) -> StepRecord | None:
    """The step that needs attention: the first failed, unknown or interrupted one, in order."""
    steps = [record.steps[s] for s in _ordered(record.steps)]
    for wanted in (State.FAILED, State.UNKNOWN, State.SENDING):
        for step in steps:
            if step.state is wanted:
                return step
    return None


def _ordered(steps: Iterable[str]) -> list[str]:
    """Step names in chain order (unknown names last, sorted)."""
    names = set(steps)
    return [s for s in STEPS if s in names] + sorted(names - set(STEPS))


def _label(step: str) -> str:
    return step.replace("_", " ")


def problem_message(record: FamilyRecord) -> str | None:
    """One line saying what went wrong with a family, or None when nothing did."""
    step = _problem_step(record)
    if step is None:
        return None
    name = _label(step.step)
    detail = ": ".join(x for x in (step.error_class, step.error_message) if x)
    if step.state is State.FAILED:
        return f"{name} failed: {detail}" if detail else f"{name} failed"
    if step.state is State.SENDING:
        detail = "interrupted while the request was in flight"
    advice = "rerun to reconcile" if step.step == "create" else "rerun to check"
    return f"{name} outcome unknown: {detail or 'no answer'} ({advice})"


def _case_of(record: FamilyRecord, known: str | None = None) -> str | None:
    if record.case_name:
        return record.case_name
    for name in _ordered(record.steps):
        if record.steps[name].case_name:
            return record.steps[name].case_name
    return known


def _fill(record: FamilyRecord) -> Fill:
    states = {s.state for s in record.steps.values()}
    if State.FAILED in states:
        return "failed"
    if states & {State.UNKNOWN, State.SENDING}:
        return "unknown"
    return None


def _case_row(record: FamilyRecord, host: str | None, known_case: str | None) -> list[Any]:
    case = _case_of(record, known_case)
    step = _problem_step(record)
    error = problem_message(record)
    if step is None:
        # e.g. a step put back to pending when the server refused the login: say why
        step = _errored_step(record)
        error = ": ".join(x for x in (step.error_class, step.error_message) if x) if step else None
    updated = max((s.updated_at for s in record.steps.values() if s.updated_at), default=None)
    return [
        record.family_id,
        record.proband_sample or None,
        case,
        *(str(record.steps[s].state) if s in record.steps else None for s in STEPS),
        sum(s.attempts for s in record.steps.values()),
        error or None,
        step.http_status if step is not None else _last_status(record),
        case_url(host, case) if host and case else None,
        _when(updated),
    ]


def _last_status(record: FamilyRecord) -> int | None:
    """The HTTP status of the last step in chain order that recorded one."""
    for name in reversed(_ordered(record.steps)):
        if record.steps[name].http_status is not None:
            return record.steps[name].http_status
    return None


def _errored_step(record: FamilyRecord) -> StepRecord | None:
    """The first step that holds an error without having failed."""
    for name in _ordered(record.steps):
        if record.steps[name].error_message or record.steps[name].error_class:
            return record.steps[name]
    return None


def _known_cases(manifest: Manifest | None) -> dict[str, str]:
    """Case Ids the manifest already holds, by family."""
    if manifest is None or "Case Id" not in manifest.columns:
        return {}
    known: dict[str, str] = {}
    for family_id in manifest.family_ids:
        position = manifest.proband_position(family_id)
        case = manifest.cell(position, "Case Id") if position is not None else ""
        if case:
            known[family_id] = case
    return known


def _case_rows(ledger: Ledger, host: str | None,
               known: Mapping[str, str]) -> Iterator[tuple[list[Any], Fill]]:
    for record in ledger.iter_families():
        yield _case_row(record, host, known.get(record.family_id)), _fill(record)


def cases_table(ledger: Ledger, *, manifest: Manifest | None = None,
                host: str | None = None) -> pl.DataFrame:
    """The Cases table (one row per family of the ledger, in manifest order) as a DataFrame."""
    names = [c.name for c in CASE_COLUMNS]
    columns: list[list[Any]] = [[] for _ in names]
    for values, _ in _case_rows(ledger, host, _known_cases(manifest)):
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return pl.DataFrame(dict(zip(names, columns, strict=True)), schema=CASE_SCHEMA)


# --------------------------------------------------------------------------- results CSV


def _target(out: Path, name: str) -> Path:
    """*out* itself, or *name* inside it when *out* is an existing directory."""
    return out / name if out.is_dir() else out


def write_results(ledger: Ledger, manifest: Manifest, out: Path) -> Path:
    """Write the official CLI's results file (``<stem>_results.csv``) for *manifest*.

    ``Case Id`` holds, on each proband row, the case of every family whose create succeeded (or
    was adopted) or that named a Case Id already; ``Errors`` holds, on the proband row of each
    failed or unknown family, one line saying which step went wrong and why. Families the ledger
    does not hold (never attempted) get neither. *out* is the file, or a directory to put
    ``<stem>_results.csv`` in.

    The cells are copied verbatim, formula-looking ones included: this file is the official
    CLI's re-runnable format, and quoting cells for spreadsheet safety would change the manifest
    that a re-run reads (the review workbook is the file for people to open).
    """
    from batch.manifest import write_results_csv

    target = _target(out, f"{manifest.path.stem}_results.csv")
    records = ledger.snapshot()
    known = _known_cases(manifest)
    case_ids: dict[str, str] = {}
    errors: dict[int, list[str]] = {}
    # Family by family, without building families: a manifest may hold 100,000 of them.
    for family_id in manifest.family_ids:
        record, named = records.get(family_id), known.get(family_id)
        case = _case_of(record, named) if record is not None else named
        if case:
            case_ids[family_id] = case
        message = problem_message(record) if record is not None else None
        if message:
            position = manifest.proband_position(family_id)
            if position is None:
                position = manifest.row_positions(family_id)[0]
            errors[manifest.row_number(position)] = [message]
    return write_results_csv(manifest, target, case_ids=case_ids, errors=errors)


# --------------------------------------------------------------------------- review workbook


class _Tally:
    """What the sheets after Cases need, gathered during the one pass over the ledger."""

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.pending: dict[str, FamilyRecord] = {}
        self.failed: list[FamilyRecord] = []
        self.unknown: list[FamilyRecord] = []

    def add(self, record: FamilyRecord) -> None:
        states = {s.state for s in record.steps.values()}
        self.held.add(record.family_id)
        if states == {State.PENDING}:
            self.pending[record.family_id] = record
        if State.FAILED in states:
            self.failed.append(record)
        if states & {State.UNKNOWN, State.SENDING}:
            self.unknown.append(record)


def write_review(
    ledger: Ledger,
    manifest: Manifest | None,
    out: Path,
    *,
    summary: Mapping[str, Any] | None = None,
    host: str | None = None,
) -> Path:
    """Write the review workbook: Summary, Cases, Failed, Not attempted, Unknown sheets.

    *out* is the file, or a directory to put ``<stem>_review.xlsx`` in (the manifest's stem, else
    the ledger's). *summary* is a run summary (``RunSummary.as_dict()``); without it the counts
    of the last run recorded in the ledger are shown; a summary with validation ``problems``
    adds a Problems sheet. Times are local time. Rows of failed families are filled red, of
    families with an unknown outcome amber.

    The Failed sheet saved as CSV is a manifest that ``emg-batch run`` accepts: its first column
    is ``Errors`` (the official CLI's name, which the manifest reader ignores: any other name
    would be read as a custom field and sent), the manifest's columns keep their names, and a
    ``Case Id`` is filled in on the proband row of families whose case exists, so a re-run
    never creates it twice. Families with an unknown outcome are not in it on purpose: only a
    rerun against the same ledger reconciles them safely.
    """
    stem = manifest.path.stem if manifest is not None else ledger.path.name.split(".")[0]
    target = _target(out, f"{stem}_review.xlsx")
    last = ledger.last_run("run") or ledger.last_run()
    host = host or (last.host if last else None)
    # families are streamed from the manifest, never all held: a manifest may hold 100,000
    known = _known_cases(manifest)

    def build(book: Any, formats: Formats) -> None:
        info = _summary_rows(ledger, manifest, summary, host, last)
        add_sheet(book, formats, "Summary", SUMMARY_COLUMNS, [(r, None) for r in info])
        tally = _Tally()
        cases = Sheet(book, formats, "Cases", CASE_COLUMNS)
        for record in ledger.iter_families():
            cases.add(_case_row(record, host, known.get(record.family_id)), fill=_fill(record))
            tally.add(record)
        cases.finish()
        _failed_sheet(book, formats, ledger, manifest, tally.failed)
        add_sheet(book, formats, "Not attempted", NOT_ATTEMPTED_COLUMNS,
                  _not_attempted_rows(tally, manifest))
        add_sheet(book, formats, "Unknown", UNKNOWN_COLUMNS, _unknown_rows(tally.unknown))
        problems = list((summary or {}).get("problems") or [])
        if problems:
            add_sheet(book, formats, "Problems", (Column("Problem", max_width=120),),
                      [([str(p)], None) for p in problems])

    return write_workbook(target, build)


SUMMARY_COLUMNS = (Column("Item", max_width=40), Column("Value", "any", max_width=80))


def _summary_rows(ledger: Ledger, manifest: Manifest | None, summary: Mapping[str, Any] | None,
                  host: str | None, last: RunRecord | None) -> list[list[object]]:
    rows: list[list[object]] = []
    counts = summary if summary is not None else (last.counts if last else None) or {}
    rows += [[key.replace("_", " "), _plain(counts[key])] for key in SUMMARY_KEYS
             if key in counts]
    rows += [[f"plan: {k}", v] for k, v in sorted(dict(counts.get("plan") or {}).items())]
    rows += _ledger_totals(ledger)
    if last is not None:
        rows += [["run started", _when(last.started_at)], ["run ended", _when(last.ended_at)]]
        rows += [[f"option: {k}", _plain(v)] for k, v in sorted(last.options.items())]
    where = str(manifest.path) if manifest is not None else (last.manifest_path if last else None)
    rows += [["host", host], ["manifest", where], ["ledger", str(ledger.path)],
             ["times", "local time of this computer"]]
    return rows


def _plain(value: object) -> object:
    """Values as cells: numbers, flags and text stay; anything else becomes JSON text."""
    if value is None or isinstance(value, int | float | str):
        return value
    return json.dumps(value, default=str)


def _ledger_totals(ledger: Ledger) -> list[list[object]]:
    rows: list[list[object]] = [["ledger: families", ledger.family_count()]]
    for step, states in _sorted_counts(ledger.step_counts()).items():
        for state, n in states.items():
            rows.append([f"ledger: {_label(step)} {state}", n])
    return rows


def _failed_sheet(book: Any, formats: Formats, ledger: Ledger, manifest: Manifest | None,
                  failed: Sequence[FamilyRecord]) -> None:
    entries = [(r, _family_of(manifest, r.family_id)) for r in failed]
    rows_of = [(r, _rows_of(r, ledger, family)) for r, family in entries]
    header = _failed_header(manifest, rows_of)
    cells = header[1:]
    rows: list[tuple[Sequence[object], Fill]] = []
    for (record, family), (_, family_rows) in zip(entries, rows_of, strict=True):
        message = problem_message(record)
        case = _case_of(record)
        proband = _proband_number(family_rows, family)
        for number, values in family_rows:
            row = dict(values)
            if case and number == proband and not row.get(CASE_ID_COLUMN):
                row[CASE_ID_COLUMN] = case
            rows.append(([message, *(row.get(c, "") for c in cells)], "failed"))
    columns = [Column(ERRORS_COLUMN, max_width=80), *(Column(c) for c in cells)]
    add_sheet(book, formats, "Failed", columns, rows)


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
    return [(int(r.get("number") or 0), dict(r.get("cells") or {})) for r in stored]


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
    needs_case = any(_case_of(r) for r, _ in entries)
    if needs_case and CASE_ID_COLUMN not in columns:
        columns.insert(0, CASE_ID_COLUMN)
    return [ERRORS_COLUMN, *columns]


NOT_ATTEMPTED_COLUMNS = (Column("Family Id"), Column("Proband BioSample"),
                         Column("First row", "int"), Column("Rows", "int"),
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
                   Column("What to do", max_width=80))
UNKNOWN_ADVICE = {
    "create": "Rerun the same command: the case is looked up by the proband's BioSample and "
              "adopted if it exists, before anything is sent again.",
    "preset_group": "Rerun the same command: the case's preset groups are checked before the "
                    "group is created again.",
}
DEFAULT_ADVICE = "Rerun the same command: the step is tried again."
INTERRUPTED = "interrupted while the request was in flight"


def _unknown_rows(records: Iterable[FamilyRecord]) -> Iterator[tuple[Sequence[object], Fill]]:
    for record in records:
        for name in _ordered(record.steps):
            step = record.steps[name]
            if step.state not in (State.UNKNOWN, State.SENDING):
                continue
            message = step.error_message or (INTERRUPTED if step.state is State.SENDING
                                             else None)
            yield ([record.family_id, record.proband_sample or None, _case_of(record),
                    _label(name), str(step.state), step.attempts, _when(step.updated_at),
                    message, UNKNOWN_ADVICE.get(name, DEFAULT_ADVICE)], "unknown")


# --------------------------------------------------------------------------- export


def csv_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix text cells that a spreadsheet would run as formulas with ``'`` (OWASP)."""
    pattern = "^[" + "".join("\\" + c if c in "-+" else c for c in FORMULA_START) + "]"
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(pattern))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    )


def export(ledger: Ledger, out: Path, *, manifest: Manifest | None = None,
           host: str | None = None) -> Path:
    """Write the Cases table to *out*: ``.xlsx`` (the whole review workbook), .csv or .parquet.

    The CSV is for spreadsheets: text cells that would start a formula get a leading ``'`` (see
    :func:`csv_safe`); times are local, ``YYYY-MM-DD HH:MM:SS``. Parquet keeps values and types
    as they are (Int64 counts, microsecond datetimes).
    """
    suffix = out.suffix.lower()
    if suffix == ".xlsx":
        return write_review(ledger, manifest, out, host=host)
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"cannot export to {out.name}: use .xlsx, .csv or .parquet")
    if host is None:
        last = ledger.last_run("run")
        host = last.host if last else None
    frame = cases_table(ledger, manifest=manifest, host=host)
    with atomic_path(out) as tmp:
        if suffix == ".csv":
            csv_safe(frame).write_csv(tmp, datetime_format="%Y-%m-%d %H:%M:%S")
        else:
            frame.write_parquet(tmp)
    return out


# --------------------------------------------------------------------------- status


def _sorted_counts(counts: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Steps in chain order, states in lifecycle order."""
    out: dict[str, dict[str, int]] = {}
    for step in _ordered(counts):
        states = counts[step]
        known = [s for s in STATE_ORDER if s in states]
        out[step] = {s: int(states[s]) for s in [*known, *sorted(set(states) - set(known))]}
    return out


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def status(ledger: Ledger) -> dict[str, Any]:
    """Where the ledger stands, from aggregate queries only (fast on 100,000 families).

    ``{"families", "steps": {step: {state: n}}, "failures": [...], "last_run": {...} | None}``;
    times are ISO 8601 with the local offset.
    """
    last = ledger.last_run()
    run = None if last is None else {
        "command": last.command, "manifest": last.manifest_path, "host": last.host,
        "options": last.options, "started": _iso(last.started_at), "ended": _iso(last.ended_at),
        "exit_code": last.exit_code, "counts": last.counts,
    }
    return {
        "families": ledger.family_count(),
        "steps": _sorted_counts(ledger.step_counts()),
        "failures": ledger.failure_groups(),
        "last_run": run,
    }


def render_status(report: Mapping[str, Any]) -> str:
    """The status report as stable text lines (no colours, no terminal widths)."""
    lines = [f"Families: {report.get('families', 0)}"]
    lines += _render_steps(report.get("steps") or {})
    lines += _render_failures(report.get("failures") or [])
    lines += _render_run(report.get("last_run"))
    return "\n".join(lines)


def _render_steps(steps: Mapping[str, Mapping[str, int]]) -> list[str]:
    if not steps:
        return ["Steps: none recorded"]
    extra = sorted({s for v in steps.values() for s in v} - set(STATE_ORDER))
    states = [*STATE_ORDER, *extra]
    width = max(len("Step"), *(len(_label(s)) for s in steps))
    head = "  ".join(f"{s:>{max(len(s), 6)}}" for s in states)
    lines = [f"{'Step':<{width}}  {head}"]
    for step, counts in steps.items():
        cells = "  ".join(f"{counts.get(s, 0):>{max(len(s), 6)}}" for s in states)
        lines.append(f"{_label(step):<{width}}  {cells}")
    return lines


def _render_failures(failures: Sequence[Mapping[str, Any]]) -> list[str]:
    if not failures:
        return ["Failures: none"]
    lines = ["Failures (most frequent first):"]
    for f in failures:
        reason = ": ".join(str(x) for x in (f.get("error_class"), f.get("message")) if x)
        lines.append(f"  {f.get('count')} x {_label(str(f.get('step')))} {f.get('state')}: "
                     f"{reason or 'no message'} (e.g. family {f.get('example_family')})")
    return lines


def _render_run(run: Mapping[str, Any] | None) -> list[str]:
    if not run:
        return ["Last run: none"]
    lines = [f"Last run: {run.get('command')}, exit code "
             f"{'-' if run.get('exit_code') is None else run.get('exit_code')}",
             f"  manifest: {run.get('manifest') or '-'}",
             f"  host: {run.get('host') or '-'}",
             f"  started: {run.get('started') or '-'}",
             f"  ended: {run.get('ended') or 'not recorded (still running or killed)'}"]
    options = run.get("options") or {}
    if options:
        lines.append("  options: " + ", ".join(f"{k}={options[k]}" for k in sorted(options)))
    counts = run.get("counts") or {}
    shown = [f"{k} {counts[k]}" for k in COUNT_KEYS if counts.get(k)]
    if shown:
        lines.append("  counts: " + ", ".join(shown))
    return lines


# --------------------------------------------------------------------------- templates


def write_template(out_dir: Path) -> list[Path]:
    """Write header-only manifests to start from: the official batch CSV and an update CSV.

    ``batch_template.csv`` is the official format: a ``[Data]`` row (padded with commas as the
    official template is) and the 23 official columns. ``update_template.csv`` holds ``Case Id``
    and the action columns. No example rows: any row would be sent as data (see TEMPLATE_HELP).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    official = _official_columns()
    files = {
        "batch_template.csv": ["[Data]" + "," * (len(official) - 1), ",".join(official)],
        "update_template.csv": [",".join(UPDATE_TEMPLATE_COLUMNS)],
    }
    written = []
    for name, lines in files.items():
        out = out_dir / name
        with atomic_path(out) as tmp:
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            tmp.chmod(0o644)  # no patient data in a template: readable like any new file
        written.append(out)
    return written


def _official_columns() -> tuple[str, ...]:
    """The official columns as the manifest module knows them (the template's order)."""
    try:
        from batch.manifest import OFFICIAL_COLUMNS
    except ImportError:  # the manifest module is the source of truth when present
        return OFFICIAL_TEMPLATE_COLUMNS
    return tuple(OFFICIAL_COLUMNS)
