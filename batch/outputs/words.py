"""What happened, in words: the one line people read about a step, counts and durations.

The ledger keeps the exception class of a failure (``error_class``) for machines; people are
told what happened instead ("the server refused the assignment: no such user (HTTP 404)"),
whether anything was sent, and what to do. No class name ever reaches a sheet, a CSV or the
console through here.
"""

from __future__ import annotations

import math

from batch.ledger import State

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


def describe(step: str, state: State | str, error_class: str | None, message: str | None,
             status: int | None = None) -> str:
    """One line saying what happened to *step* in *state* and why, without class names.

    >>> describe("assign", "failed", "NotFound", "no such user", 404)
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


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 family``, ``2 families``: a count with its noun."""
    if count == 1:
        return f"{count} {noun}"
    if many is None:
        consonant_y = noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u")
        many = noun[:-1] + "ies" if consonant_y else noun + "s"
    return f"{count} {many}"


def duration(seconds: float) -> str:
    """A time span for people: ``12.3 s``, ``4 min 05 s``, ``2 h 07 min``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
