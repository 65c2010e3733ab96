"""The database a ledger holds: one connection, explicit transactions, the process lock, and
the group commit that lets many workers share one commit.

This layer uses asyncio directly (an event and loop callbacks), not anyio: a group commit runs
as a loop callback so that a write once queued is committed even if its writer is cancelled,
and the run is on asyncio anyway (aiohttp is asyncio only). Every write is synchronous and
short, with no ``await`` inside, so cancellation cannot tear one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Self

from batch.errors import LedgerError
from batch.ledger.files import acquire, ledger_error, release, remove
from batch.ledger.schema import connect

#: Event-loop turns a group commit waits for more writers to join it (see ``durably``).
GROUP_COMMIT_TURNS = 2
#: Seconds at most a write queued by ``later`` waits for a commit to take it along: a reader
#: (``emg-batch status`` during a run) sees a success no later than this.
LATER_WITHIN = 1.0


class _Batch:
    """Writes that will be committed together, and how their commit went."""

    __slots__ = ("done", "error", "writes")

    def __init__(self) -> None:
        self.writes: list[Callable[[], object]] = []
        # asyncio's own event: the ledger is written on every state change, and anyio's
        # wrapper looks the async library up each time one is made.
        self.done = asyncio.Event()
        self.error: BaseException | None = None


def _after_turns(turns: int, callback: Callable[..., object], *args: Any) -> None:
    """Call ``callback(*args)`` once the event loop has gone round *turns* more times."""
    loop = asyncio.get_running_loop()
    if turns <= 1:
        loop.call_soon(callback, *args)
    else:
        loop.call_soon(_after_turns, turns - 1, callback, *args)


def _identity(path: Path) -> tuple[int, int] | None:
    """The device and inode *path* names, or None when it names nothing."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


class Database:
    """The connection to a ledger file, held by its ``Ledger``; open with :meth:`open`."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock_fd: int | None = None
        self._batch: _Batch | None = None
        self._deferred: list[Callable[[], object]] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self.commits = 0
        self._identity = _identity(path)

    # -- opening and locking -------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> Self:
        """Open (or create) the ledger at *path*: mode 0600, schema checked and migrated."""
        path = Path(path)
        return cls(path, connect(path, create=create))

    def on_disk(self) -> bool:
        """Whether the path still names the file opened: False once it was deleted or
        replaced meanwhile (SQLite goes on writing to the file it has open, which nobody
        will find again)."""
        return self._identity is not None and _identity(self.path) == self._identity

    def lock(self) -> None:
        """Take the ledger for this process; a second process gets a clear LedgerError.

        The lock file (``<ledger>.lock``, 0600) is removed again by :meth:`close`.
        """
        if self._lock_fd is None:
            self._lock_fd = acquire(self.path)

    def close(self) -> None:
        """Commit queued writes (see :meth:`later`), close the database, release the lock."""
        with contextlib.suppress(LedgerError, sqlite3.Error):
            self.flush()
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            release(fd, self.path)

    def discard(self) -> None:
        """Close, and remove the ledger's files while its lock is still held, so no process
        that takes the lock next can lose a ledger it has just opened (the lock file goes
        last, with the lock). For a ledger that recorded nothing."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        remove(self.path)
        self.close()

    # -- statements and transactions -----------------------------------------------------

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Run one statement; a SQLite error becomes a ``LedgerError`` naming the file."""
        try:
            return self._conn.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise ledger_error(f"cannot write ledger {self.path}: {exc}", exc) from exc

    def cursor(self) -> sqlite3.Cursor:
        """A cursor of its own, for a read streamed row by row."""
        return self._conn.cursor()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several writes into one commit (nested use joins the open transaction)."""
        if self._conn.in_transaction:
            yield
            return
        self.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                with contextlib.suppress(LedgerError):
                    self.execute("ROLLBACK")
            raise

    def meta(self, key: str) -> str | None:
        """A value from the meta table."""
        row = self.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a value in the meta table."""
        self.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- group commit ----------------------------------------------------------------------

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

        Only for records whose loss costs a look-up and nothing else (see
        ``Ledger.record_created``). The next commit takes the queued writes along; in a
        running event loop one is made within ``LATER_WITHIN`` seconds when no other comes
        (so that what readers see is never long behind); :meth:`flush` (or :meth:`close`)
        commits what is left.
        """
        self._deferred.append(functools.partial(write, *args, **kwargs))
        if self._flush_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: flushed on close
                return
            self._flush_timer = loop.call_later(LATER_WITHIN, self._flush_late)

    def _flush_late(self) -> None:
        """The timed commit of writes queued by :meth:`later` (a loop callback). When it
        fails, those records are lost as with a killed process (each costs a look-up at the
        next run); the next commit meets the same fault and raises it to its writer."""
        self._flush_timer = None
        if self._conn.in_transaction:  # never inside another's transaction
            return
        with contextlib.suppress(LedgerError, sqlite3.Error):
            self.flush()

    def flush(self) -> None:
        """Commit the writes queued by :meth:`later` now."""
        if self._deferred:
            self.commit([])

    def commit(self, writes: Iterable[Callable[[], object]]) -> None:
        """Run *writes* (and any queued by :meth:`later`) in one transaction, committed now."""
        if self._flush_timer is not None:  # this commit takes the queued writes along
            self._flush_timer.cancel()
            self._flush_timer = None
        deferred, self._deferred = self._deferred, []
        with self.transaction():
            for queued in (*deferred, *writes):
                queued()
        self.commits += 1
