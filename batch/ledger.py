"""The results ledger: a SQLite file (WAL) with one committed write per state change.

Every family has one row in ``families`` and one row per step in ``steps``. A step moves
``pending`` → ``sending`` → ``succeeded`` | ``failed`` | ``unknown``; ``sending`` is committed
before a create is sent, so a process killed at any instant leaves a ledger that says exactly
which creates may have reached the server. Writes are synchronous and short (no ``await`` in
between), so cancellation cannot tear one; in WAL mode with ``synchronous=NORMAL`` a commit
survives the process being killed. Tokens, passwords and headers are never written here.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from batch.errors import LedgerError

SCHEMA_VERSION = 1
#: Event-loop turns a group commit waits for more writers to join it (see ``durably``).
GROUP_COMMIT_TURNS = 2
STEPS = ("create", "assign", "preset_group", "set_status")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    command TEXT NOT NULL,
    manifest_path TEXT,
    manifest_hash TEXT,
    host TEXT,
    options TEXT NOT NULL DEFAULT '{}',
    pid INTEGER,
    started_at REAL NOT NULL,
    ended_at REAL,
    exit_code INTEGER,
    counts TEXT
);
CREATE TABLE IF NOT EXISTS families (
    family_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    proband_sample TEXT NOT NULL DEFAULT '',
    row_hash TEXT NOT NULL,
    created_hash TEXT,
    case_name TEXT,
    rows TEXT,
    note TEXT,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS steps (
    family_id TEXT NOT NULL,
    step TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    error_class TEXT,
    error_message TEXT,
    case_name TEXT,
    run_id INTEGER,
    started_at REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (family_id, step)
) WITHOUT ROWID;
-- No index on state: every state change would pay for it, and the counts that would use it
-- scan 100,000 families in well under a second anyway.
DROP INDEX IF EXISTS steps_state;
-- A succeeded create stores its case on the family in the same statement (atomic), and
-- notes the rows' hash it was created from.
CREATE TRIGGER IF NOT EXISTS create_succeeded_update AFTER UPDATE OF state ON steps
WHEN NEW.step = 'create' AND NEW.state = 'succeeded' AND NEW.case_name IS NOT NULL
BEGIN
    UPDATE families SET case_name = NEW.case_name, created_hash = row_hash,
        updated_at = NEW.updated_at WHERE family_id = NEW.family_id;
END;
CREATE TRIGGER IF NOT EXISTS create_succeeded_insert AFTER INSERT ON steps
WHEN NEW.step = 'create' AND NEW.state = 'succeeded' AND NEW.case_name IS NOT NULL
BEGIN
    UPDATE families SET case_name = NEW.case_name, created_hash = row_hash,
        updated_at = NEW.updated_at WHERE family_id = NEW.family_id;
END;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    case_name TEXT NOT NULL,
    status TEXT,
    previous_status TEXT,
    status_change_date TEXT,
    body TEXT NOT NULL,
    received_at REAL NOT NULL,
    handled_at REAL
);
"""


class State(StrEnum):
    """The state of one step of one family."""

    PENDING = "pending"
    SENDING = "sending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class StepRecord:
    """One step of one family as the ledger holds it."""

    step: str
    state: State
    attempts: int = 0
    http_status: int | None = None
    error_class: str | None = None
    error_message: str | None = None
    case_name: str | None = None
    started_at: float | None = None
    updated_at: float | None = None


@dataclass(slots=True)
class FamilyRecord:
    """A family and its steps as the ledger holds them."""

    family_id: str
    seq: int
    proband_sample: str
    row_hash: str
    created_hash: str | None
    case_name: str | None
    note: str | None
    steps: dict[str, StepRecord] = field(default_factory=dict)

    @property
    def create(self) -> StepRecord | None:
        """The create step, if the family has one."""
        return self.steps.get("create")

    @property
    def done(self) -> bool:
        """Every step of the family succeeded."""
        return bool(self.steps) and all(s.state is State.SUCCEEDED for s in self.steps.values())


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One invocation recorded in the ledger."""

    id: int
    command: str
    manifest_path: str | None
    host: str | None
    options: dict[str, Any]
    started_at: float
    ended_at: float | None
    exit_code: int | None
    counts: dict[str, Any] | None


def default_path(manifest: Path) -> Path:
    """The ledger next to *manifest*: ``<stem>.ledger.sqlite``."""
    return manifest.with_name(f"{manifest.stem}.ledger.sqlite")


class _Batch:
    """Writes that will be committed together, and how their commit went."""

    __slots__ = ("done", "error", "writes")

    def __init__(self) -> None:
        self.writes: list[Callable[[], object]] = []
        # asyncio's own event: the ledger is written on every state change, and anyio's
        # wrapper looks the async library up each time one is made. (aiohttp ties the run to
        # asyncio anyway.)
        self.done = asyncio.Event()
        self.error: BaseException | None = None


def _after_turns(turns: int, callback: Callable[..., object], *args: Any) -> None:
    """Call ``callback(*args)`` once the event loop has gone round *turns* more times."""
    loop = asyncio.get_running_loop()
    if turns <= 1:
        loop.call_soon(callback, *args)
    else:
        loop.call_soon(_after_turns, turns - 1, callback, *args)


class Ledger:
    """A results ledger on disk. Open with :meth:`open`; use as a context manager."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock_file: IO[str] | None = None
        self._batch: _Batch | None = None
        self._deferred: list[Callable[[], object]] = []
        self.commits = 0

    # -- opening and locking -------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> Ledger:
        """Open (or create) the ledger at *path*, file mode 0600, schema checked."""
        path = Path(path)
        if not create and not path.exists():
            raise LedgerError(f"no ledger at {path}: run the manifest first, or pass --ledger PATH")
        try:
            if create and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open ledger {path}: {exc}") from exc
        ledger = cls(path, conn)
        try:
            ledger._check_version()
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _check_version(self) -> None:
        found = self.meta("schema_version")
        if found is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(found) != SCHEMA_VERSION:
            raise LedgerError(
                f"{self.path} has ledger schema {found}; this emg-batch reads {SCHEMA_VERSION}. "
                "Use the emg-batch version that wrote it, or start over with a new --ledger."
            )

    def lock(self) -> None:
        """Take the ledger for this process; a second process gets a clear LedgerError."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the run
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LedgerError(
                f"ledger {self.path} is in use by another emg-batch process (pid {holder}); "
                "wait for it to finish, or use a different --ledger"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def close(self) -> None:
        """Commit queued writes (see :meth:`later`), close the database, release the lock."""
        with contextlib.suppress(LedgerError, sqlite3.Error):
            self.flush()
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- low-level -------------------------------------------------------------------------

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write ledger {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several writes into one commit (used for bulk inserts only)."""
        self._execute("BEGIN IMMEDIATE")
        try:
            yield
            self._execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                with contextlib.suppress(LedgerError):
                    self._execute("ROLLBACK")
            raise

    async def durably(self, write: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Run ``write(*args, **kwargs)`` and return once it is committed (group commit).

        Workers that write at the same moment share one commit, so the ledger does not
        serialise the pool: the first writer schedules the commit a couple of event-loop
        turns later, and every write queued by then goes into the same transaction. The
        commit runs as a loop callback, not in the writer's task, so a write that has been
        queued is committed even if its caller is cancelled meanwhile (it only ever records
        "may have been sent").
        """
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch()
            _after_turns(GROUP_COMMIT_TURNS, self._commit_group, batch)
        batch.writes.append(functools.partial(write, *args, **kwargs))
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error

    def _commit_group(self, batch: _Batch) -> None:
        """Commit a group (and any writes queued by :meth:`later`); tell its writers."""
        self._batch = None
        try:
            self.commit(batch.writes)
        except Exception as exc:  # every writer of the group raises it
            batch.error = exc
        except BaseException as exc:
            batch.error = LedgerError(f"the ledger commit was interrupted: {exc!r}")
            raise
        finally:
            batch.done.set()

    def later(self, write: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Queue ``write(*args, **kwargs)`` for the next commit and return at once.

        Only for records whose loss costs a look-up and nothing else: a succeeded create lost
        with a killed process is still ``sending`` in the ledger, and the next run finds the
        case and adopts it. The next :meth:`durably` commit takes the queued writes along;
        :meth:`flush` (or :meth:`close`) commits what is left.
        """
        self._deferred.append(functools.partial(write, *args, **kwargs))

    def flush(self) -> None:
        """Commit the writes queued by :meth:`later` now."""
        if self._deferred:
            self.commit([])

    def commit(self, writes: Iterable[Callable[[], object]]) -> None:
        """Run *writes* (and any queued by :meth:`later`) in one transaction, committed now."""
        deferred, self._deferred = self._deferred, []
        with self.transaction():
            for queued in (*deferred, *writes):
                queued()
        self.commits += 1

    def release(self, family_ids: Iterable[str], step: str) -> None:
        """Put ``sending`` steps that were never sent back to ``pending`` (one attempt fewer).

        For steps marked ``sending`` ahead of time: the families a stopped run never reached.
        """
        now = time.time()
        with self.transaction():
            for family_id in family_ids:
                self._execute(
                    "UPDATE steps SET state = 'pending', attempts = max(attempts - 1, 0),"
                    " started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END,"
                    " updated_at = ? WHERE family_id = ? AND step = ? AND state = 'sending'",
                    (now, family_id, step),
                )

    def meta(self, key: str) -> str | None:
        """A value from the meta table."""
        row = self._execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a value in the meta table."""
        self._execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- runs ------------------------------------------------------------------------------

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

    def runs(self) -> list[RunRecord]:
        """Every invocation, oldest first."""
        rows = self._execute(
            "SELECT id, command, manifest_path, host, options, started_at, ended_at, exit_code,"
            " counts FROM runs ORDER BY id"
        ).fetchall()
        return [
            RunRecord(r[0], r[1], r[2], r[3], json.loads(r[4] or "{}"), r[5], r[6], r[7],
                      None if r[8] is None else json.loads(r[8]))
            for r in rows
        ]

    def last_run(self, command: str | None = None) -> RunRecord | None:
        """The latest invocation (of *command*, when given)."""
        runs = [r for r in self.runs() if command is None or r.command == command]
        return runs[-1] if runs else None

    # -- families and steps ----------------------------------------------------------------

    def add_families(self, families: Iterable[tuple[str, int, str, str, Iterable[str]]]) -> int:
        """Insert new families as ``pending``: (family_id, seq, proband_sample, row_hash, steps).

        Families already in the ledger keep their state. One transaction for the batch.
        """
        now = time.time()
        added = 0
        with self.transaction():
            for family_id, seq, sample, row_hash, steps in families:
                cur = self._execute(
                    "INSERT OR IGNORE INTO families (family_id, seq, proband_sample, row_hash,"
                    " updated_at) VALUES (?, ?, ?, ?, ?)",
                    (family_id, seq, sample, row_hash, now),
                )
                added += cur.rowcount
                for step in steps:
                    self._execute(
                        "INSERT OR IGNORE INTO steps (family_id, step, state, updated_at)"
                        " VALUES (?, ?, 'pending', ?)",
                        (family_id, step, now),
                    )
        return added

    def update_family(self, family_id: str, **fields: Any) -> None:
        """Set columns of a family row (hash, case name, created hash, stored rows, note)."""
        allowed = {"row_hash", "case_name", "created_hash", "rows", "note", "proband_sample", "seq"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown family fields: {sorted(unknown)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._execute(
            f"UPDATE families SET {sets}, updated_at = ? WHERE family_id = ?",
            (*fields.values(), time.time(), family_id),
        )

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
    ) -> None:
        """Record one state change of one step, committed before returning.

        ``attempt=True`` counts an attempt and stamps ``started_at`` (the moment before sending,
        which reconciliation compares with the server's creation time).
        """
        now = time.time()
        self._execute(
            "INSERT INTO steps (family_id, step, state, attempts, http_status, error_class,"
            " error_message, case_name, run_id, started_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (family_id, step) DO UPDATE SET state = excluded.state,"
            " attempts = steps.attempts + ?, http_status = excluded.http_status,"
            " error_class = excluded.error_class, error_message = excluded.error_message,"
            " case_name = COALESCE(excluded.case_name, steps.case_name),"
            " run_id = COALESCE(excluded.run_id, steps.run_id),"
            " started_at = CASE WHEN ? THEN COALESCE(steps.started_at, excluded.started_at)"
            " ELSE steps.started_at END,"
            " updated_at = excluded.updated_at",
            (family_id, step, str(state), int(attempt), http_status, error_class, error_message,
             case_name, run_id, now if attempt else None, now, int(attempt), int(attempt)),
        )

    def record_created(
        self,
        family_id: str,
        case_name: str,
        *,
        http_status: int | None = None,
        run_id: int | None = None,
    ) -> None:
        """Mark the create succeeded; a trigger stores the case on the family atomically.

        One statement, so a process killed at any instant cannot leave a succeeded create
        without its case name; ``created_hash`` becomes the family's current ``row_hash``.
        """
        self.set_step(family_id, "create", State.SUCCEEDED, http_status=http_status,
                      case_name=case_name, run_id=run_id)

    def snapshot(self) -> dict[str, FamilyRecord]:
        """Every family with its steps, read in two queries (used to plan a run)."""
        families: dict[str, FamilyRecord] = {}
        for fid, seq, sample, row_hash, created_hash, case, note in self._execute(
            "SELECT family_id, seq, proband_sample, row_hash, created_hash, case_name, note"
            " FROM families"
        ):
            families[fid] = FamilyRecord(fid, seq, sample, row_hash, created_hash, case, note)
        for row in self._execute(
            "SELECT family_id, step, state, attempts, http_status, error_class, error_message,"
            " case_name, started_at, updated_at FROM steps"
        ):
            record = families.get(row[0])
            if record is not None:
                record.steps[row[1]] = StepRecord(row[1], State(row[2]), *row[3:])
        return families

    def family(self, family_id: str) -> FamilyRecord | None:
        """One family with its steps."""
        row = self._execute(
            "SELECT family_id, seq, proband_sample, row_hash, created_hash, case_name, note"
            " FROM families WHERE family_id = ?",
            (family_id,),
        ).fetchone()
        if row is None:
            return None
        record = FamilyRecord(*row)
        for srow in self._execute(
            "SELECT step, state, attempts, http_status, error_class, error_message, case_name,"
            " started_at, updated_at FROM steps WHERE family_id = ?",
            (family_id,),
        ):
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
             "example_family": r[5]}
            for r in rows
        ]

    def iter_families(self) -> Iterator[FamilyRecord]:
        """Every family in manifest order, steps attached, streamed."""
        cur = self._conn.cursor()
        cur.execute(
            "SELECT f.family_id, f.seq, f.proband_sample, f.row_hash, f.created_hash, f.case_name,"
            " f.note, s.step, s.state, s.attempts, s.http_status, s.error_class, s.error_message,"
            " s.case_name, s.started_at, s.updated_at FROM families f"
            " LEFT JOIN steps s ON s.family_id = f.family_id ORDER BY f.seq, f.family_id"
        )
        current: FamilyRecord | None = None
        for row in cur:
            if current is None or current.family_id != row[0]:
                if current is not None:
                    yield current
                current = FamilyRecord(*row[:7])
            if row[7] is not None:
                current.steps[row[7]] = StepRecord(row[7], State(row[8]), *row[9:])
        if current is not None:
            yield current

    # -- webhook events --------------------------------------------------------------------

    def add_event(self, dedupe_key: str, case_name: str, body: Mapping[str, Any]) -> bool:
        """Record a webhook event once; False when it was already recorded (a duplicate)."""
        cur = self._execute(
            "INSERT OR IGNORE INTO events (dedupe_key, case_name, status, previous_status,"
            " status_change_date, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (dedupe_key, case_name, body.get("status"), body.get("previous_status"),
             body.get("status_change_date"), json.dumps(dict(body)), time.time()),
        )
        return cur.rowcount == 1

    def mark_event_handled(self, dedupe_key: str) -> None:
        """Note that an event's follow-up work finished."""
        self._execute("UPDATE events SET handled_at = ? WHERE dedupe_key = ?",
                      (time.time(), dedupe_key))

    def events(self) -> list[dict[str, Any]]:
        """Every recorded webhook event, oldest first."""
        rows = self._execute(
            "SELECT dedupe_key, case_name, status, previous_status, status_change_date,"
            " received_at, handled_at FROM events ORDER BY id"
        ).fetchall()
        keys = ("dedupe_key", "case_name", "status", "previous_status", "status_change_date",
                "received_at", "handled_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]
