"""The results ledger: every family and step of a manifest, and the named state transitions
that are the only way a run changes them.

Every family has one row in ``families`` and one row per step in ``steps``. A run records what
happened through methods named for it (``mark_sending``, ``record_created``, ``record_failed``,
``record_unknown``, ``release``, ...); each owns its commit policy, said in its docstring, and
each checks the move against ``states.TRANSITIONS``. ``set_step`` is the one checked write
underneath them all.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from typing import Any

from batch.ledger.binding import Bindings
from batch.ledger.events import EventLog
from batch.ledger.reads import Reads
from batch.ledger.records import NewFamily, Outcome
from batch.ledger.runs import RunLog
from batch.ledger.states import SOURCES, IllegalTransition, State, allowed

_FAMILY_FIELDS = frozenset({"row_hash", "case_name", "created_hash", "rows", "note",
                            "proband_sample", "seq"})
_UPDATE_STEP = (
    "UPDATE steps SET state = ?, attempts = attempts + ?, http_status = ?, error_class = ?,"
    " error_message = ?, case_name = COALESCE(?, case_name), run_id = COALESCE(?, run_id),"
    " started_at = CASE WHEN ? THEN COALESCE(started_at, ?) ELSE started_at END,"
    " server_started_at = CASE WHEN ? THEN COALESCE(server_started_at, ?)"
    " ELSE server_started_at END,"
    " updated_at = ? WHERE family_id = ? AND step = ? AND state IN ({sources})"
)
_INSERT_STEP = (
    "INSERT INTO steps (family_id, step, state, attempts, http_status, error_class,"
    " error_message, case_name, run_id, started_at, updated_at, server_started_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: The conditional update for each target state: only from the states that may lead to it.
_UPDATES = {
    state: _UPDATE_STEP.format(sources=", ".join(f"'{s}'" for s in sorted(SOURCES[state])))
    for state in State
}


class Ledger(Reads, RunLog, EventLog, Bindings):
    """A results ledger on disk. Open with :meth:`open`; use as a context manager."""

    # -- registering ------------------------------------------------------------------------

    def add_families(self, families: Iterable[NewFamily]) -> int:
        """Insert new families with their steps ``pending``; one transaction for the batch.

        Families already in the ledger keep their state. Returns how many were new.
        """
        now = time.time()
        added = 0
        with self.transaction():
            for family in families:
                cur = self._execute(
                    "INSERT OR IGNORE INTO families (family_id, seq, proband_sample, row_hash,"
                    " updated_at) VALUES (?, ?, ?, ?, ?)",
                    (family.family_id, family.seq, family.proband_sample, family.row_hash, now),
                )
                added += cur.rowcount
                for step in family.steps:
                    self._execute(
                        "INSERT OR IGNORE INTO steps (family_id, step, state, updated_at)"
                        " VALUES (?, ?, 'pending', ?)",
                        (family.family_id, step, now),
                    )
        return added

    def update_family(self, family_id: str, **fields: Any) -> None:
        """Set columns of a family row (hash, case name, created hash, stored rows, note)."""
        unknown = set(fields) - _FAMILY_FIELDS
        if unknown:
            raise ValueError(f"unknown family fields: {sorted(unknown)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._execute(
            f"UPDATE families SET {sets}, updated_at = ? WHERE family_id = ?",
            (*fields.values(), time.time(), family_id),
        )

    # -- the one checked write -------------------------------------------------------------

    def set_step(
        self,
        family_id: str,
        step: str,
        state: State,
        *,
        attempt: bool = False,
        http_status: int | None = None,
        error_class: str | None = None,
        error_message: str | None = None,
        case_name: str | None = None,
        run_id: int | None = None,
        server_at: float | None = None,
    ) -> None:
        """Move one step to *state*; ``IllegalTransition`` when the table forbids the move.

        ``attempt=True`` counts an attempt and stamps ``started_at`` (the moment before sending)
        and ``server_started_at`` (*server_at*: the server's clock then, which reconciliation
        compares with the server's creation time; the first attempt's is kept). A step the
        ledger does not hold yet (a column added to an edited manifest) starts from
        ``pending``. Written in the current transaction, or committed at once when there is
        none.
        """
        now = time.time()
        stamp = now if attempt else None
        values = (http_status, error_class, error_message, case_name, run_id)
        server = server_at if attempt else None
        cur = self._execute(_UPDATES[state], (str(state), int(attempt), *values, int(attempt),
                                              stamp, int(attempt), server, now, family_id, step))
        if cur.rowcount:
            return
        found = self._state_of(family_id, step)
        if found is not None or not (state is State.PENDING or allowed(State.PENDING, state)):
            raise IllegalTransition(family_id, step, found, state)
        self._execute(_INSERT_STEP, (family_id, step, str(state), int(attempt), *values,
                                     stamp, now, server))

    def _state_of(self, family_id: str, step: str) -> State | None:
        row = self._execute("SELECT state FROM steps WHERE family_id = ? AND step = ?",
                            (family_id, step)).fetchone()
        return None if row is None else State(row[0])

    # -- named transitions -----------------------------------------------------------------

    def _sending(self, family_id: str, step: str, run_id: int | None,
                 proband_sample: str | None, server_at: float | None) -> None:
        if proband_sample is not None:
            # the name sent is kept: reconciliation looks it up if the row is edited later
            self.update_family(family_id, proband_sample=proband_sample)
        self.set_step(family_id, step, State.SENDING, attempt=True, run_id=run_id,
                      server_at=server_at)

    async def mark_sending(self, family_id: str, step: str, *, run_id: int | None = None,
                           proband_sample: str | None = None,
                           server_at: float | None = None) -> None:
        """The request is about to go out: attempt counted, start times stamped (ours, and
        *server_at*, the server's clock).

        Durable: returns once committed (group commit), so a process killed after the
        request left always finds ``sending``. *proband_sample* (creates) replaces the name
        the ledger keeps when the row was edited.
        """
        await self.durably(self._sending, family_id, step, run_id, proband_sample, server_at)

    def reserve(self, items: Sequence[tuple[str, str | None]], step: str, *,
                run_id: int | None = None, server_at: float | None = None) -> None:
        """Mark many ``(family_id, proband_sample)`` as ``sending`` ahead of time, in one commit.

        A commit costs far more than the writes in it; creates are reserved a window at a time
        just before they are handed out (*server_at*: the server's clock then, a lower bound
        of when each is sent). Those never sent go back with :meth:`release`.
        """
        self.commit([functools.partial(self._sending, family_id, step, run_id, sample, server_at)
                     for family_id, sample in items])

    def release(self, family_ids: Iterable[str], step: str) -> None:
        """Put ``sending`` steps that were never sent back to ``pending`` (one attempt fewer).

        Committed at once, in one transaction: for the families a stopped run reserved but
        never reached, and for a family whose payload could not be made after all.
        """
        now = time.time()
        with self.transaction():
            for family_id in family_ids:
                self._execute(
                    "UPDATE steps SET state = 'pending', attempts = max(attempts - 1, 0),"
                    " started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END,"
                    " server_started_at = CASE WHEN attempts <= 1 THEN NULL"
                    " ELSE server_started_at END,"
                    " updated_at = ? WHERE family_id = ? AND step = ? AND state = 'sending'",
                    (now, family_id, step),
                )

    async def record_created(self, family_id: str, case_name: str, *, http_status: int = 201,
                             run_id: int | None = None, final: bool = False,
                             adopted: bool = False) -> None:
        """The create succeeded (or its case was found and *adopted*).

        A trigger stores the case and the rows' hash on the family in the step's statement,
        and the case's origin (created or adopted) is written in the same commit, so a
        process killed at any instant cannot leave a succeeded create without its case.
        Durable, unless *final* (no step follows): then it rides with the next commit and
        returns at once. Lost with a killed process, it leaves the create ``sending``, which
        the next run reconciles by looking the case up: never a second case.
        """

        def write() -> None:
            self.set_step(family_id, "create", State.SUCCEEDED, http_status=http_status,
                          case_name=case_name, run_id=run_id)
            self._execute("INSERT OR REPLACE INTO origins (family_id, case_name, adopted)"
                          " VALUES (?, ?, ?)", (family_id, case_name, int(adopted)))

        if final:
            self.later(write)
        else:
            await self.durably(write)

    async def record_succeeded(self, family_id: str, step: str, *, case_name: str | None = None,
                               run_id: int | None = None) -> None:
        """An action step is done. Durable."""
        await self.durably(self.set_step, family_id, step, State.SUCCEEDED, case_name=case_name,
                           run_id=run_id)

    async def record_failed(self, family_id: str, step: str, outcome: Outcome, *,
                            rows: str | None = None, case_name: str | None = None,
                            run_id: int | None = None) -> None:
        """The step failed for good in this run; *rows* (JSON) keeps the family's rows for the
        review's Failed sheet. Durable, both writes in one commit."""

        def write() -> None:
            self.set_step(family_id, step, State.FAILED, http_status=outcome.status,
                          error_class=outcome.kind, error_message=outcome.message,
                          case_name=case_name, run_id=run_id)
            if rows is not None:
                self.update_family(family_id, rows=rows)

        await self.durably(write)

    def record_unknown(self, family_id: str, step: str, outcome: Outcome, *,
                       run_id: int | None = None) -> None:
        """Whether the step took effect cannot be told (lost answer, cancelled, undecided).

        Committed at once and synchronously: it is written while a request is cancelled,
        where nothing can be awaited.
        """
        self.set_step(family_id, step, State.UNKNOWN, http_status=outcome.status,
                      error_class=outcome.kind, error_message=outcome.message, run_id=run_id)

    def record_refused(self, family_id: str, step: str, outcome: Outcome) -> None:
        """The server refused the request unread (401/403): back to ``pending``, with why.

        Committed at once: the run stops right after.
        """
        self.set_step(family_id, step, State.PENDING, error_class=outcome.kind,
                      error_message=outcome.message)

    def recreate(self, family_id: str, steps: Sequence[str], note: str) -> None:
        """Start a family whose case was moved to the trash over: its steps (the revert too)
        make way for *steps*, all ``pending``, and its case is forgotten, with *note* saying
        which it was. Not a transition (a succeeded step stays final): the family begins a
        new life, as a family never seen, and is looked up before its first create.
        Committed at once, in one transaction.
        """
        now = time.time()
        with self.transaction():
            self._execute("DELETE FROM steps WHERE family_id = ?", (family_id,))
            self._execute("UPDATE families SET case_name = NULL, created_hash = NULL, note = ?,"
                          " updated_at = ? WHERE family_id = ?", (note, now, family_id))
            for step in steps:
                self._execute("INSERT INTO steps (family_id, step, state, updated_at)"
                              " VALUES (?, ?, 'pending', ?)", (family_id, step, now))

    def note(self, family_id: str, text: str | None) -> None:
        """Why a family is reported (e.g. edited after its case was created); None clears it.

        Committed at once. Shown in the review workbook's Cases sheet.
        """
        self.update_family(family_id, note=text)
