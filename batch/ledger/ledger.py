"""The results ledger: one ``Ledger`` over the database it holds (``database.Database``:
the connection, transactions, the lock, group commit). Every family has one row in
``families`` and one row per step in ``steps``; the runs, the webhook events and the server
the ledger belongs to have their tables beside them.

A run records what happened through methods named for it (``mark_sending``,
``record_created``, ``record_failed``, ``record_unknown``, ``release``, ...); each owns its
commit policy, said in its docstring, and each checks the move against
``states.TRANSITIONS``. ``set_step`` is the one checked write underneath them all.

The reads (``snapshot``, ``family``, counts, failure groups) plan a run, fill the review
outputs and answer ``status``. The ``runs`` table holds one row per invocation (command,
manifest, host, options, outcome).

The ``events`` table holds webhook events, each recorded once (by its dedupe key) before it is
answered, then handled, or failed with its reason and attempts. Also the ``unread`` table
(webhook bodies in which no case was found, the newest few kept) and the listing cursor (the
server time up to which the case listing has been read, in ``meta``). Only the fields the
listener uses are kept (case, status, previous status, change date, time received), never the
body, so a row stays a few hundred bytes whatever a sender posts. Work is per case: one
re-read settles every event of the case recorded before it began, so handling and failing
take a case and the newest event id the work covered.

The ``binding`` table (one row: host and account) says which server a ledger belongs to. The
cases a ledger records exist on one server only. Used against another, a run would skip every
family as done and create nothing there, so a ledger that records work done on its server
refuses any other host. A ledger whose work reached no server (a dry run, refused creates)
takes the host it is next used with; an older ledger without the table takes the host of its
last run. The account (a username, or ``token``) is kept to be shown; secrets never are.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from batch.errors import LedgerError
from batch.ledger.database import Database
from batch.ledger.files import holder
from batch.ledger.records import (
    Binding,
    FamilyRecord,
    NewFamily,
    OpenCase,
    Outcome,
    RunRecord,
    StepRecord,
    canonical_host,
    shown,
)
from batch.ledger.schema import SCHEMA
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

# adopted: the origin of the family's case, when it is the case the family holds now
_FAMILY = ("SELECT f.family_id, f.seq, f.proband_sample, f.row_hash, f.created_hash,"
           " f.case_name, f.note, o.adopted FROM families f LEFT JOIN origins o"
           " ON o.family_id = f.family_id AND o.case_name = f.case_name")
_STEP = ("SELECT step, state, attempts, http_status, error_class, error_message, case_name,"
         " started_at, updated_at, server_started_at, run_id FROM steps")

EVENT_KEYS = ("id", "dedupe_key", "case_name", "status", "previous_status",
              "status_change_date", "received_at", "handled_at", "attempts", "error", "failed_at")
_COLUMNS = ", ".join(EVENT_KEYS)
_OPEN = "handled_at IS NULL AND failed_at IS NULL"
#: Unread bodies kept (each at most the listener's body cap, 64 KB): the newest ones.
UNREAD_KEPT = 100
UNREAD_KEYS = ("id", "received_at", "content_type", "header_names", "reason", "body")
_CURSOR = "listing_cursor"

#: Step states that mean a request may have reached the server (or did, and succeeded).
REACHED = (State.SENDING.value, State.SUCCEEDED.value, State.UNKNOWN.value)


class Ledger:
    """A results ledger on disk. Open with :meth:`open`; use as a context manager."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> Self:
        """Open (or create) the ledger at *path*: mode 0600, schema checked and migrated."""
        ledger = cls(Database.open(path, create=create))
        try:
            ledger._upgrade()
        except BaseException:
            ledger.close()
            raise
        return ledger

    # -- the database it holds ---------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The ledger file."""
        return self._db.path

    @property
    def commits(self) -> int:
        """Commits made so far (group commit shares one among many writers)."""
        return self._db.commits

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """One statement on the database: every read and write of the ledger passes here."""
        return self._db.execute(sql, params)

    def on_disk(self) -> bool:
        """Whether the path still names the file opened (see ``Database.on_disk``)."""
        return self._db.on_disk()

    def lock(self) -> None:
        """Take the ledger for this process (see ``Database.lock``)."""
        self._db.lock()

    def close(self) -> None:
        """Commit queued writes, close the database, release the lock."""
        self._db.close()

    def discard(self) -> None:
        """Close, and remove the ledger's files (see ``Database.discard``)."""
        self._db.discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Group several writes into one commit (nested use joins the open transaction)."""
        return self._db.transaction()

    def meta(self, key: str) -> str | None:
        """A value from the meta table."""
        return self._db.meta(key)

    def set_meta(self, key: str, value: str) -> None:
        """Store a value in the meta table."""
        self._db.set_meta(key, value)

    async def durably(self, write: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Run ``write(*args, **kwargs)`` and return once it is committed (group commit)."""
        await self._db.durably(write, *args, **kwargs)

    def later(self, write: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Queue ``write(*args, **kwargs)`` for the next commit and return at once."""
        self._db.later(write, *args, **kwargs)

    def flush(self) -> None:
        """Commit the writes queued by :meth:`later` now."""
        self._db.flush()

    def commit(self, writes: Iterable[Callable[[], object]]) -> None:
        """Run *writes* (and any queued by :meth:`later`) in one transaction, committed now."""
        self._db.commit(writes)

    def _upgrade(self) -> None:
        """Bring tables of older ledgers up to date, past the schema version."""
        self._upgrade_events()

    # -- registering -------------------------------------------------------------------------

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

    # -- the one checked write ---------------------------------------------------------------

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

    # -- named transitions -------------------------------------------------------------------

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

    # -- reads -------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, FamilyRecord]:
        """Every family with its steps, read in two queries (used to plan a run)."""
        families: dict[str, FamilyRecord] = {}
        for row in self._execute(_FAMILY):
            families[row[0]] = _family(row)
        for row in self._execute(_STEP.replace("SELECT ", "SELECT family_id, ", 1)):
            record = families.get(row[0])
            if record is not None:
                record.steps[row[1]] = StepRecord(row[1], State(row[2]), *row[3:])
        return families

    def family(self, family_id: str) -> FamilyRecord | None:
        """One family with its steps."""
        row = self._execute(_FAMILY + " WHERE f.family_id = ?", (family_id,)).fetchone()
        if row is None:
            return None
        record = _family(row)
        for srow in self._execute(_STEP + " WHERE family_id = ?", (family_id,)):
            record.steps[srow[0]] = StepRecord(srow[0], State(srow[1]), *srow[2:])
        return record

    def family_count(self) -> int:
        """How many families the ledger holds."""
        return int(self._execute("SELECT count(*) FROM families").fetchone()[0])

    def family_rows(self, family_id: str) -> list[dict[str, Any]] | None:
        """The manifest rows stored for a family (stored when it failed), or None."""
        sql = "SELECT rows FROM families WHERE family_id = ?"
        row = self._execute(sql, (family_id,)).fetchone()
        return None if row is None or row[0] is None else list(json.loads(row[0]))

    def step_counts(self) -> dict[str, dict[str, int]]:
        """``{step: {state: count}}`` in one aggregate query."""
        counts: dict[str, dict[str, int]] = {}
        for step, state, n in self._execute(
            "SELECT step, state, count(*) FROM steps GROUP BY step, state"
        ):
            counts.setdefault(step, {})[state] = n
        return counts

    def failure_groups(self, limit: int = 20) -> list[dict[str, Any]]:
        """Failed and unknown steps grouped by reason, with a count and one example each."""
        rows = self._execute(
            "SELECT step, state, error_class, error_message, count(*), min(family_id) FROM steps"
            " WHERE state IN ('failed', 'unknown') GROUP BY step, state, error_class, error_message"
            " ORDER BY count(*) DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {"step": r[0], "state": r[1], "error_class": r[2], "message": r[3], "count": r[4],
             "example_family": r[5], "families": self._first_families(r[:4])}
            for r in rows
        ]

    def _first_families(self, group: tuple[Any, ...], limit: int = 3) -> list[str]:
        """The first families of a failure group, in manifest order."""
        rows = self._execute(
            "SELECT s.family_id FROM steps s JOIN families f ON f.family_id = s.family_id"
            " WHERE s.step = ? AND s.state = ? AND s.error_class IS ? AND s.error_message IS ?"
            " ORDER BY f.seq, f.family_id LIMIT ?", (*group, limit)).fetchall()
        return [r[0] for r in rows]

    def iter_families(self) -> Iterator[FamilyRecord]:
        """Every family in manifest order, steps attached, streamed."""
        cur = self._db.cursor()
        cur.execute(
            _FAMILY.replace(" FROM", ", s.step, s.state, s.attempts, s.http_status,"
                            " s.error_class, s.error_message, s.case_name, s.started_at,"
                            " s.updated_at, s.server_started_at, s.run_id FROM", 1)
            + " LEFT JOIN steps s ON s.family_id = f.family_id ORDER BY f.seq, f.family_id"
        )
        current: FamilyRecord | None = None
        for row in cur:
            if current is None or current.family_id != row[0]:
                if current is not None:
                    yield current
                current = _family(row[:8])
            if row[8] is not None:
                current.steps[row[8]] = StepRecord(row[8], State(row[9]), *row[10:])
        if current is not None:
            yield current

    # -- runs --------------------------------------------------------------------------------

    def begin_run(
        self,
        command: str,
        *,
        manifest_path: str | None = None,
        manifest_hash: str | None = None,
        host: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> int:
        """Record the start of an invocation; return its id."""
        cur = self._execute(
            "INSERT INTO runs (command, manifest_path, manifest_hash, host, options, pid,"
            " started_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (command, manifest_path, manifest_hash, host, json.dumps(dict(options or {})),
             os.getpid(), time.time()),
        )
        return int(cur.lastrowid or 0)

    def end_run(self, run_id: int, *, exit_code: int, counts: Mapping[str, Any]) -> None:
        """Record the end of an invocation."""
        self._execute(
            "UPDATE runs SET ended_at = ?, exit_code = ?, counts = ? WHERE id = ?",
            (time.time(), exit_code, json.dumps(dict(counts)), run_id),
        )

    def amend_exit(self, since: float, *, exit_code: int) -> None:
        """Correct the exit code of the runs of this process begun at or after *since* (its
        outputs failed after the run ended); committed at once."""
        self._execute("UPDATE runs SET exit_code = ? WHERE pid = ? AND started_at >= ?",
                      (exit_code, os.getpid(), since))

    def runs(self) -> list[RunRecord]:
        """Every invocation, oldest first."""
        rows = self._execute(
            "SELECT id, command, manifest_path, host, options, started_at, ended_at, exit_code,"
            " counts, pid FROM runs ORDER BY id"
        ).fetchall()
        return [
            RunRecord(r[0], r[1], r[2], r[3], json.loads(r[4] or "{}"), r[5], r[6], r[7],
                      None if r[8] is None else json.loads(r[8]), r[9])
            for r in rows
        ]

    def in_progress(self) -> RunRecord | None:
        """The run going on now: the last one, not ended, whose process is alive and holds
        the ledger's lock. None when no run is going on (one that was killed is not)."""
        last = self.last_run()
        if last is None or last.ended_at is not None or last.pid is None:
            return None
        return last if holder(self.path) == last.pid else None

    def last_run(self, command: str | None = None) -> RunRecord | None:
        """The latest invocation (of *command*, when given)."""
        runs = [r for r in self.runs() if command is None or r.command == command]
        return runs[-1] if runs else None

    # -- webhook events ----------------------------------------------------------------------

    def _upgrade_events(self) -> None:
        """A ledger written before failures were recorded kept whole bodies: rebuild it."""
        columns = {row[1] for row in self._execute("PRAGMA table_info(events)").fetchall()}
        if "body" not in columns and "failed_at" in columns:
            return
        keep = [c for c in ("id", "dedupe_key", "case_name", "status", "previous_status",
                            "status_change_date", "received_at", "handled_at") if c in columns]
        with self.transaction():
            self._execute("ALTER TABLE events RENAME TO events_old")
            self._execute("DROP INDEX IF EXISTS events_case")
            for statement in _events_schema():
                self._execute(statement)
            names = ", ".join(keep)
            self._execute(f"INSERT INTO events ({names}) SELECT {names} FROM events_old")
            self._execute("DROP TABLE events_old")

    def add_event(self, dedupe_key: str, case_name: str, event: Mapping[str, Any]) -> int | None:
        """Record a webhook event once: its row id, or None when it was already recorded."""
        cur = self._execute(
            "INSERT OR IGNORE INTO events (dedupe_key, case_name, status, previous_status,"
            " status_change_date, received_at) VALUES (?, ?, ?, ?, ?, ?)",
            (dedupe_key, case_name, event.get("status"), event.get("previous_status"),
             event.get("status_change_date"), time.time()),
        )
        return cur.lastrowid if cur.rowcount == 1 else None

    def mark_events_handled(self, case_name: str, upto: int) -> int:
        """The work on *case_name* covering events up to id *upto* is done; rows marked."""
        cur = self._execute(
            f"UPDATE events SET handled_at = ?, error = NULL WHERE case_name = ? AND id <= ?"
            f" AND {_OPEN}", (time.time(), case_name, upto))
        return cur.rowcount

    def record_event_failure(self, case_name: str, upto: int, *, attempts: int, error: str,
                             final: bool) -> int:
        """The work on *case_name* failed (*attempts* so far); *final*: given up. Rows marked."""
        cur = self._execute(
            f"UPDATE events SET attempts = ?, error = ?, failed_at = ? WHERE case_name = ?"
            f" AND id <= ? AND {_OPEN}",
            (attempts, error, time.time() if final else None, case_name, upto))
        return cur.rowcount

    def open_cases(self) -> list[OpenCase]:
        """Cases with events neither handled nor given up, oldest first (to resume them)."""
        rows = self._execute(
            f"SELECT case_name, MAX(id), MAX(attempts) FROM events WHERE {_OPEN}"
            " GROUP BY case_name ORDER BY MIN(id)").fetchall()
        return [OpenCase(str(case), int(upto), int(attempts)) for case, upto, attempts in rows]

    def retry_failed_events(self) -> int:
        """Give the events that were given up a fresh set of attempts; how many."""
        cur = self._execute("UPDATE events SET failed_at = NULL, attempts = 0"
                            " WHERE failed_at IS NOT NULL AND handled_at IS NULL")
        return cur.rowcount

    def event_counts(self) -> dict[str, int]:
        """Events by state: ``handled``, ``pending`` (retrying included) and ``failed``."""
        row = self._execute(
            "SELECT COUNT(handled_at), SUM(handled_at IS NULL AND failed_at IS NULL),"
            " SUM(handled_at IS NULL AND failed_at IS NOT NULL) FROM events").fetchone()
        return {"handled": int(row[0] or 0), "pending": int(row[1] or 0),
                "failed": int(row[2] or 0)}

    def failed_events(self, limit: int = 20) -> list[dict[str, Any]]:
        """Events given up, newest first, at most *limit*."""
        rows = self._execute(
            f"SELECT {_COLUMNS} FROM events WHERE failed_at IS NOT NULL AND handled_at IS NULL"
            " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(zip(EVENT_KEYS, r, strict=True)) for r in rows]

    def keep_unread(self, body: bytes, *, content_type: str, header_names: list[str],
                    reason: str) -> int:
        """Keep a webhook body in which no case was found (dropping the oldest beyond
        ``UNREAD_KEPT``); how many have been kept in all."""
        with self.transaction():
            cur = self._execute(
                "INSERT INTO unread (received_at, content_type, header_names, reason, body)"
                " VALUES (?, ?, ?, ?, ?)",
                (time.time(), content_type[:200], ", ".join(header_names)[:2000], reason, body))
            total = int(cur.lastrowid or 0)
            self._execute("DELETE FROM unread WHERE id <= ?", (total - UNREAD_KEPT,))
        return total

    def unread_count(self) -> int:
        """Webhook bodies ever kept as unread (older ones may have been dropped)."""
        row = self._execute("SELECT seq FROM sqlite_sequence WHERE name = 'unread'").fetchone()
        return int(row[0]) if row else 0

    def unread_bodies(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest unread bodies, newest first, at most *limit*."""
        rows = self._execute(f"SELECT {', '.join(UNREAD_KEYS)} FROM unread ORDER BY id DESC"
                             " LIMIT ?", (limit,)).fetchall()
        return [dict(zip(UNREAD_KEYS, r, strict=True)) for r in rows]

    def recent_change_dates(self, limit: int = 1000) -> list[str]:
        """The change dates of the newest *limit* events, as recorded (text: the sender's)."""
        rows = self._execute("SELECT status_change_date FROM events WHERE status_change_date"
                             " IS NOT NULL ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [str(row[0]) for row in rows]

    def listing_cursor(self) -> str | None:
        """The server time (ISO 8601) up to which the case listing has been read, if any."""
        return self.meta(_CURSOR)

    def set_listing_cursor(self, when: str) -> None:
        """Record that the case listing has been read up to *when* (server time, ISO 8601)."""
        self.set_meta(_CURSOR, when)

    def events(self) -> list[dict[str, Any]]:
        """Every recorded webhook event, oldest first."""
        rows = self._execute(f"SELECT {_COLUMNS} FROM events ORDER BY id").fetchall()
        return [dict(zip(EVENT_KEYS, r, strict=True)) for r in rows]

    # -- the server it belongs to ------------------------------------------------------------

    def binding(self) -> Binding | None:
        """The server this ledger belongs to; for a ledger never bound, its last run's."""
        row = self._execute("SELECT host, account FROM binding WHERE id = 1").fetchone()
        if row is not None:
            # the migration copies a run's host as it was written
            return Binding(canonical_host(str(row[0])), None if row[1] is None else str(row[1]))
        run = self._execute(
            "SELECT host FROM runs WHERE host IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
        return None if run is None else Binding(canonical_host(str(run[0])))

    def holds_work(self) -> bool:
        """Whether anything was recorded: a run, a family or a webhook event."""
        found = self._execute(
            "SELECT EXISTS (SELECT 1 FROM runs) OR EXISTS (SELECT 1 FROM families)"
            " OR EXISTS (SELECT 1 FROM events)").fetchone()
        return bool(found[0])

    def holds_server_work(self) -> bool:
        """Whether the server may hold something this ledger records: a step that succeeded
        or may have reached it (sending, unknown), or a webhook event it sent. A dry run, or
        a run whose every request was refused, created nothing anywhere."""
        found = self._execute(
            "SELECT EXISTS (SELECT 1 FROM steps WHERE state IN (?, ?, ?))"
            " OR EXISTS (SELECT 1 FROM events)", REACHED).fetchone()
        return bool(found[0])

    def check_host(self, host: str) -> None:
        """``LedgerError`` when this ledger holds work done on a server other than *host*."""
        bound = self.binding()
        if (bound is not None and bound.host != canonical_host(host)
                and self.holds_server_work()):
            raise foreign_host(self.path, bound, canonical_host(host))

    def bind(self, host: str, account: str | None) -> Binding:
        """Check *host* (see :meth:`check_host`) and record it with *account*; committed now.

        The first account is kept; one recorded before accounts were is filled in.
        """
        host = canonical_host(host)
        with self.transaction():
            self.check_host(host)
            bound = self.binding()
            if bound is not None and bound.host == host and bound.account is not None:
                return bound
            self._execute("INSERT OR REPLACE INTO binding (id, host, account, bound_at)"
                          " VALUES (1, ?, ?, ?)", (host, account, time.time()))
        return Binding(host, account)


def _family(row: Any) -> FamilyRecord:
    """A family record from the first eight columns of ``_FAMILY``."""
    adopted = None if row[7] is None else bool(row[7])
    fid, seq, sample, row_hash, created_hash, case, note = row[:7]
    return FamilyRecord(fid, seq, sample, row_hash, created_hash, case, note, adopted)


def _events_schema() -> list[str]:
    """The statements of the events table and its index, as the schema has them."""
    start = SCHEMA.index("CREATE TABLE IF NOT EXISTS events")
    end = SCHEMA.index(";", SCHEMA.index("events_case"))
    return [s.strip() for s in SCHEMA[start:end].split(";") if s.strip()]


def foreign_host(path: Path, bound: Binding, host: str) -> LedgerError:
    """The refusal of a ledger used against *host*, with the two ways to go on."""
    return LedgerError(
        f"ledger {path} belongs to {bound}, not to {shown(host)}: nothing was sent. Its cases "
        f"are on that server; to work with {shown(host)}, start a new ledger with --ledger "
        f"NEW.sqlite, or move {path} away."
    )
