"""What to say about a family's outcome: what happened to each step, in words, and what to do
about it; the family's case, link and problem; the fill of its row; and the Cases table (one
row per family), from its ledger record.

The ledger keeps the exception class of a failure (``error_class``) for machines; people are
told what happened instead ("the server refused the assignment: no such user (HTTP 404)"),
whether anything was sent, and what to do. No class name ever reaches a sheet, a CSV or the
console through here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from batch.ledger import STEPS, FamilyRecord, Ledger, State, StepRecord
from batch.manifest import Manifest
from batch.outputs.workbook import Column, Fill

if TYPE_CHECKING:
    import polars as pl


#: What each step does to a case, as a noun phrase.
ACTS = {"create": "the case creation", "assign": "the assignment",
        "preset_group": "the preset group", "set_status": "the status change",
        "revert": "the move to the trash"}
#: What to do when a step's outcome is unknown: only the create and the preset group are not
#: safe to send twice, so they are looked up first.
UNKNOWN_ADVICE = {"create": "the case may exist; rerun to look it up",
                  "preset_group": "the group may have been added; rerun to check",
                  "revert": "rerun revert: the case's status is read before anything is sent"}
DEFAULT_UNKNOWN_ADVICE = "rerun to send it again (safe to repeat)"
INTERRUPTED = "interrupted while the request was in flight"
NOT_SENT = "nothing was sent"
#: Messages of look-ups made before a create, by prefix, and what failed, in words.
LOOKUPS = {"look-up failed: ": "a look-up before {act} failed",
           "could not look for the family's case on the server: ":
               "the search for the family's existing case failed"}
RETRIES = "gave up after retries: "
REVIEW = "needs review: "
#: Failures found by emg-batch's own check before the request (the client's words): nothing
#: reached the server, so there is no HTTP status to show.
CHECKED_BEFORE_SENDING = ("unknown user e-mail(s)", "the family's case already exists")


def act(step: str) -> str:
    """A step as what it does (``the assignment``); unknown steps by their name."""
    return ACTS.get(step, f"the {step.replace('_', ' ')} step")


def with_status(text: str, status: int | None) -> str:
    """*text* with ``(HTTP n)`` added, unless it names that status already."""
    if status is None or f"HTTP {status}" in text:
        return text
    return f"{text} (HTTP {status})"


def step_outcome(step: str, state: State | str, error_class: str | None, message: str | None,
             status: int | None = None) -> str:
    """One line saying what happened to *step* in *state* and why, without class names.

    >>> step_outcome("assign", "failed", "NotFound", "no such user", 404)
    'the server refused the assignment: no such user (HTTP 404)'
    """
    detail = (message or "").strip()
    try:
        state = State(state)
    except ValueError:  # a report read back from JSON may hold anything
        return f"{act(step)} is {state}" + (f": {detail}" if detail else "")
    if state is State.FAILED:
        return _failed(step, error_class or "", detail, status)
    if state is State.SENDING:  # the run stopped before the answer came
        return _unknown(step, INTERRUPTED, None)
    if state is State.UNKNOWN:
        return _unknown(step, detail or "no answer", status)
    return _not_sent(step, error_class or "", detail, status)


def _failed(step: str, kind: str, detail: str, status: int | None) -> str:
    if kind == "BuildError":
        reason = f": {detail}" if detail else ""
        return f"the case could not be built from its rows{reason}; {NOT_SENT}"
    for prefix, what in LOOKUPS.items():
        if detail.startswith(prefix):
            reason = with_status(detail.removeprefix(prefix), status)
            return f"{what.format(act=act(step))}: {reason}; {NOT_SENT}"
    if detail.startswith(REVIEW):
        return _review(step, detail)
    if detail.startswith(CHECKED_BEFORE_SENDING):
        return f"{act(step)} was not sent: {detail}"
    if kind == "RetriesExhausted" or detail.startswith(RETRIES):
        reason = with_status(detail.removeprefix(RETRIES) or "no answer", status)
        return f"{act(step)} failed after several tries: {reason}"
    if kind == "AuthError":
        return with_status(f"the server refused the credentials for {act(step)}: {detail}",
                           status)
    if status is not None and 400 <= status < 500:
        return with_status(f"the server refused {act(step)}: {detail or 'no reason given'}",
                           status)
    return with_status(f"{act(step)} failed: {detail or 'no reason given'}", status)


def _unknown(step: str, detail: str, status: int | None) -> str:
    if detail.startswith(REVIEW):
        return _review(step, detail)
    advice = UNKNOWN_ADVICE.get(step, DEFAULT_UNKNOWN_ADVICE)
    return f"the outcome of {act(step)} is unknown ({with_status(detail, status)}): {advice}"


def _review(step: str, detail: str) -> str:
    """Whether the case (or the group) exists cannot be told: a person has to look."""
    text = f"{act(step)} needs review: {detail.removeprefix(REVIEW)}"
    return text if "Emedgene" in text else f"{text}; check the case in Emedgene"


def _not_sent(step: str, kind: str, detail: str, status: int | None) -> str:
    """A step put back to pending with an error (the server refused the login)."""
    why = "the server refused the credentials" if kind == "AuthError" else "an error"
    reason = with_status(f"{why}: {detail}" if detail else why, status)
    return f"{act(step)} was not sent ({reason}); rerun once that is fixed"


#: What to do about a failed step, by the start of its message (the client's own checks).
FIXES = {"unknown user e-mail(s)": "correct the e-mail in Assign To (no such user in the "
                                   "organization)",
         "the family's case already exists": "rerun with --if-exists adopt to take the case "
                                             "over, or --if-exists create for another"}
RERUN = "rerun the same command"


def advice(step: str, state: State | str, error_class: str | None,
           message: str | None, status: int | None = None) -> str:
    """What a person does about *step* in *state*, as one short instruction.

    >>> advice("create", "failed", "BuildError", "no proband")
    "Fix the family's rows in the manifest, then rerun the same command."
    """
    detail = (message or "").strip()
    if str(state) in (State.UNKNOWN, State.SENDING):
        if detail.startswith(REVIEW):
            return "Check the case in Emedgene as the problem says, then rerun the same command."
        return f"Rerun the same command: {RECHECK.get(step, 'the step is sent again')}."
    fix = _fix(error_class or "", detail, status)
    return f"{fix[:1].upper()}{fix[1:]}, then {RERUN}."


#: What a rerun does first about a step whose outcome is unknown.
RECHECK = {"create": "the case is looked up before anything is sent again",
           "preset_group": "the case's presets are checked before the group is sent again"}


def _fix(kind: str, detail: str, status: int | None) -> str:
    for start, fix in FIXES.items():
        if detail.startswith(start):
            return fix
    if detail.startswith(REVIEW):
        return "check the case in Emedgene as the problem says"
    if kind == "BuildError":
        return "fix the family's rows in the manifest"
    if kind == "AuthError":
        return "check the credentials (EMG_USERNAME and EMG_PASSWORD, or EMG_TOKEN)"
    if status is not None and 400 <= status < 500 and status != 429:
        return "fix the family's rows as the server's answer says"
    return "wait until the server answers again"


# Headers are Title Case in every table for people, as the manifest's own columns are.
STEP_TITLES = {"create": "Create", "assign": "Assign", "preset_group": "Preset Group",
               "set_status": "Set Status", "revert": "Revert"}
STATE_ORDER = tuple(str(s) for s in State)


CASE_COLUMNS: tuple[Column, ...] = (
    Column("Family Id"),
    Column("Proband BioSample"),
    Column("Case"),
    *(Column(STEP_TITLES[s], max_width=14) for s in STEPS),
    Column("Attempts", "int"),
    Column("Last Error", max_width=80),
    Column("HTTP Status", "int"),
    Column("Link", "link"),
    Column("Updated", "datetime"),
)


def case_schema() -> dict[str, pl.DataType]:
    """The types of the Cases table's columns (polars is imported only when a table is made)."""
    import polars as pl

    return {**{c.name: pl.String() for c in CASE_COLUMNS},
            "Attempts": pl.Int64(), "HTTP Status": pl.Int64(), "Updated": pl.Datetime("us")}


def case_url(host: str, case: str) -> str:
    """Where *case* opens in the Emedgene web app: ``{host}/case/{case}``.

    This address is inferred from how the web app links to cases; the API reference does not
    document it. A trailing slash on *host* is dropped.
    """
    return f"{host.rstrip('/')}/case/{case}"


LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def links_to_cases(host: str | None) -> bool:
    """Whether a case of *host* can be linked to: a tenant, not a host on this computer.

    A loopback host (127.0.0.0/8, ::1, localhost) is a sandbox: it has no web app, and the
    one ``--sandbox`` starts is gone when the command ends, so a link to it would never open
    (and would open nothing for a colleague the workbook is sent to)."""
    name = urlsplit(host if host and "://" in host else f"//{host or ''}").hostname
    if not name or name.lower() in LOOPBACK_NAMES:
        return False
    try:
        return not ipaddress.ip_address(name).is_loopback
    except ValueError:
        return True  # a name: a tenant


def link_note(host: str | None) -> str | None:
    """Why the Cases table has no links, when *host* is one they cannot point at."""
    if not host or links_to_cases(host):
        return None
    return (f"none: {host} is a sandbox on this computer, with no web app to open cases in "
            "(a --sandbox run's sandbox is gone when the run ends); the Case column names "
            "each case")


# --------------------------------------------------------------------------- per-family facts


def when(ts: float | None) -> datetime | None:
    """A ledger time (epoch seconds) as a naive local datetime, the form spreadsheets show."""
    return None if ts is None else datetime.fromtimestamp(ts)


def _problem_step(record: FamilyRecord, *, live: bool = False) -> StepRecord | None:
    """The step that needs attention: the first failed, unknown or interrupted one, in order.
    With *live* (a run is going on) a ``sending`` step is in flight: it needs none."""
    steps = [record.steps[s] for s in ordered(record.steps)]
    wanted_states = (State.FAILED, State.UNKNOWN) if live else (
        State.FAILED, State.UNKNOWN, State.SENDING)
    for wanted in wanted_states:
        for step in steps:
            if step.state is wanted:
                return step
    return None


def ordered(steps: Iterable[str]) -> list[str]:
    """Step names in chain order (unknown names last, sorted)."""
    names = set(steps)
    return [s for s in STEPS if s in names] + sorted(names - set(STEPS))


def label(step: str) -> str:
    """A step's name for people (``preset group``)."""
    return step.replace("_", " ")


def problem_message(record: FamilyRecord, *, live: bool = False) -> str | None:
    """One line saying, in words, what went wrong with a family, or None when nothing did
    (see :func:`batch.outputs.outcomes.step_outcome`; the class stays in the ledger). *live*: a run
    is going on (its steps in flight are not interrupted)."""
    step = _problem_step(record, live=live)
    return None if step is None else step_message(step)


def problem_advice(record: FamilyRecord) -> str:
    """What to do about a family's problem, as one instruction (see
    :func:`batch.outputs.outcomes.advice`)."""
    step = _problem_step(record)
    if step is None:
        return "Nothing."
    return advice(step.step, step.state, step.error_class, step.error_message, step.http_status)


def step_message(step: StepRecord) -> str:
    """What happened to one step, in words."""
    return step_outcome(step.step, step.state, step.error_class, step.error_message,
                    step.http_status)


def case_of(record: FamilyRecord, known: str | None = None) -> str | None:
    """The family's case: the ledger's, else one a step recorded, else *known*."""
    if record.case_name:
        return record.case_name
    for name in ordered(record.steps):
        if record.steps[name].case_name:
            return record.steps[name].case_name
    return known


def revert_note(record: FamilyRecord) -> str | None:
    """What a done revert says of the family's case, or None when none is done."""
    revert = record.steps.get("revert")
    if revert is None or revert.state is not State.SUCCEEDED:
        return None
    return f"case {case_of(record)} moved to the trash by revert"


def fill_of(record: FamilyRecord, *, live: bool = False) -> Fill:
    """The colour of the family's row: failed, unknown (or interrupted, unless *live*: a run
    is going on and its steps are in flight), or none."""
    states = {s.state for s in record.steps.values()}
    if State.FAILED in states:
        return "failed"
    if states & ({State.UNKNOWN} if live else {State.UNKNOWN, State.SENDING}):
        return "unknown"
    return None


def in_flight(record: FamilyRecord) -> str | None:
    """What a family's step in flight in a run going on is doing, in words, or None."""
    step = next((record.steps[s] for s in ordered(record.steps)
                 if record.steps[s].state is State.SENDING), None)
    return None if step is None else f"{act(step.step)} is in progress (the run is going on)"


def case_row(record: FamilyRecord, host: str | None, known_case: str | None, *,
             live: bool = False) -> list[Any]:
    """The family's row of the Cases table (``CASE_COLUMNS``); *live*: a run is going on.

    "Last Error" says what needs attention: the step that failed or is unknown, an error kept
    on a step (e.g. put back to pending when the server refused the login), or the family's
    note (e.g. edited after its case was created). "HTTP Status" is that step's status (empty
    when it got no answer, or was checked and never sent); for a family without such a step,
    the last status a step recorded.
    """
    case = case_of(record, known_case)
    step = _problem_step(record, live=live) or _errored_step(record)
    error = step_message(step) if step is not None else None
    if live and step is None:
        error = in_flight(record)
    # a step needing attention shows its own status or none: another step's 201 would read
    # as the answer to it
    status = step.http_status if step is not None else _last_status(record)
    updated = max((s.updated_at for s in record.steps.values() if s.updated_at), default=None)
    return [
        record.family_id,
        record.proband_sample or None,
        case,
        *(str(record.steps[s].state) if s in record.steps else None for s in STEPS),
        sum(s.attempts for s in record.steps.values()),
        error or revert_note(record) or record.note or None,
        status,
        case_url(host, case) if host and case and links_to_cases(host) else None,
        when(updated),
    ]


def _last_status(record: FamilyRecord) -> int | None:
    """The HTTP status of the last step in chain order that recorded one."""
    for name in reversed(ordered(record.steps)):
        if record.steps[name].http_status is not None:
            return record.steps[name].http_status
    return None


def _errored_step(record: FamilyRecord) -> StepRecord | None:
    """The first step that holds an error without having failed."""
    for name in ordered(record.steps):
        if record.steps[name].error_message or record.steps[name].error_class:
            return record.steps[name]
    return None


def known_cases(manifest: Manifest | None) -> dict[str, str]:
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


def _case_rows(ledger: Ledger, host: str | None, known: Mapping[str, str],
               live: bool) -> Iterator[tuple[list[Any], Fill]]:
    for record in ledger.iter_families():
        yield (case_row(record, host, known.get(record.family_id), live=live),
               fill_of(record, live=live))


def cases_table(ledger: Ledger, *, manifest: Manifest | None = None,
                host: str | None = None, live: bool = False) -> pl.DataFrame:
    """The Cases table (one row per family of the ledger, in manifest order) as a DataFrame;
    *live*: a run is going on (see :func:`case_row`)."""
    import polars as pl

    names = [c.name for c in CASE_COLUMNS]
    columns: list[list[Any]] = [[] for _ in names]
    for values, _ in _case_rows(ledger, host, known_cases(manifest), live):
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return pl.DataFrame(dict(zip(names, columns, strict=True)), schema=case_schema())
def sorted_counts(counts: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Steps in chain order, states in lifecycle order."""
    out: dict[str, dict[str, int]] = {}
    for step in ordered(counts):
        states = counts[step]
        known = [s for s in STATE_ORDER if s in states]
        out[step] = {s: int(states[s]) for s in [*known, *sorted(set(states) - set(known))]}
    return out
