"""The one vocabulary of step state: steps, states, and the legal transitions between them.

A step of a family moves ``pending`` → ``sending`` → ``succeeded`` | ``failed`` | ``unknown``.
``sending`` is written before a request goes out, so a process killed at any instant leaves a
ledger that says which requests may have reached the server. The table below is the only
definition of what may follow what; the ledger refuses anything else (a bug, not a failure).

| from      | to        | when                                                           |
|-----------|-----------|----------------------------------------------------------------|
| pending   | sending   | the request is about to go out                                 |
| pending   | succeeded | nothing to send: the case already exists and is adopted        |
| pending   | failed    | the request cannot be made (payload or look-up failed)         |
| pending   | unknown   | cannot tell whether the work is done: needs review, not sent   |
| sending   | sending   | sent again, after a look-up showed the last try did nothing    |
| sending   | pending   | never sent after all, or refused (401/403) unread: released    |
| sending   | succeeded | answered: done (or the lost answer's case was found: adopted)  |
| sending   | failed    | answered with an error that a retry will not fix               |
| sending   | unknown   | the answer was lost (timeout, reset, cancelled)                |
| failed    | sending   | tried again in a later run                                     |
| failed    | succeeded | adopted, or done by a later try                                |
| failed    | failed    | failed again                                                   |
| failed    | unknown   | cannot tell, on a later try                                    |
| unknown   | sending   | a look-up showed the lost request did nothing: sent again      |
| unknown   | succeeded | its case was found (adopted), or the step is seen done         |
| unknown   | failed    | sent again and refused                                         |
| unknown   | unknown   | still cannot tell                                              |
| succeeded | —         | final: a succeeded step is never sent again                    |

``revert`` is not part of a family's chain: ``emg-batch revert`` adds it to a family whose case
it moves to the trash, and it moves through the same states (a lost answer is reconciled by
reading the case's status: moving a case to the trash twice changes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Step(StrEnum):
    """The steps of a family, in chain order."""

    CREATE = "create"
    ASSIGN = "assign"
    PRESET_GROUP = "preset_group"
    SET_STATUS = "set_status"
    #: Not a chain step: the case moved to the trash by ``emg-batch revert``.
    REVERT = "revert"


class State(StrEnum):
    """The state of one step of one family."""

    PENDING = "pending"
    SENDING = "sending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


#: Step names in chain order, then ``revert``.
STEPS: tuple[str, ...] = tuple(str(s) for s in Step)

_P, _S, _OK, _F, _U = State.PENDING, State.SENDING, State.SUCCEEDED, State.FAILED, State.UNKNOWN
TRANSITIONS: Mapping[State, frozenset[State]] = {
    _P: frozenset({_S, _OK, _F, _U}),
    _S: frozenset({_S, _P, _OK, _F, _U}),
    _F: frozenset({_S, _OK, _F, _U}),
    _U: frozenset({_S, _OK, _F, _U}),
    _OK: frozenset(),
}
#: For each target state, the states it may be reached from.
SOURCES: Mapping[State, frozenset[State]] = {
    target: frozenset(s for s, targets in TRANSITIONS.items() if target in targets)
    for target in State
}


class IllegalTransition(RuntimeError):
    """A write asked for a transition the table does not allow: a bug in the caller."""

    def __init__(self, family_id: str, step: str, found: State | None, wanted: State) -> None:
        was = "no such step" if found is None else str(found)
        super().__init__(f"illegal transition of {family_id}/{step}: {was} -> {wanted}")
        self.found = found
        self.wanted = wanted


def allowed(found: State, wanted: State) -> bool:
    """Whether a step in state *found* may move to *wanted*."""
    return wanted in TRANSITIONS[found]
