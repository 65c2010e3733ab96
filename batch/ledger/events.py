"""The ``events`` table: webhook events, each recorded once (by its dedupe key) before it is
answered, then handled, or failed with its reason and attempts. Also the ``unread`` table
(webhook bodies in which no case was found, the newest few kept) and the listing cursor (the
server time up to which the case listing has been read, in ``meta``).

Only the fields the listener uses are kept (case, status, previous status, change date, time
received), never the body, so a row stays a few hundred bytes whatever a sender posts. Work
is per case: one re-read settles every event of the case recorded before it began, so
handling and failing take a case and the newest event id the work covered.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batch.ledger.db import Database
from batch.ledger.schema import SCHEMA

EVENT_KEYS = ("id", "dedupe_key", "case_name", "status", "previous_status",
              "status_change_date", "received_at", "handled_at", "attempts", "error", "failed_at")
_COLUMNS = ", ".join(EVENT_KEYS)
_OPEN = "handled_at IS NULL AND failed_at IS NULL"
#: Unread bodies kept (each at most the listener's body cap, 64 KB): the newest ones.
UNREAD_KEPT = 100
UNREAD_KEYS = ("id", "received_at", "content_type", "header_names", "reason", "body")
_CURSOR = "listing_cursor"


@dataclass(frozen=True, slots=True)
class OpenCase:
    """A case with events neither handled nor given up: the newest one, attempts so far."""

    case: str
    upto: int
    attempts: int


class EventLog(Database):
    """Webhook events recorded in the ledger."""

    def _upgrade(self) -> None:
        super()._upgrade()
        self._upgrade_events()

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


def _events_schema() -> list[str]:
    """The statements of the events table and its index, as the schema has them."""
    start = SCHEMA.index("CREATE TABLE IF NOT EXISTS events")
    end = SCHEMA.index(";", SCHEMA.index("events_case"))
    return [s.strip() for s in SCHEMA[start:end].split(";") if s.strip()]
