"""The ``events`` table: webhook events, each recorded once (by its dedupe key) before it is
answered, and marked handled once its follow-up work is done."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from batch.ledger.db import Database

EVENT_KEYS = ("dedupe_key", "case_name", "status", "previous_status", "status_change_date",
              "received_at", "handled_at")


class EventLog(Database):
    """Webhook events recorded in the ledger."""

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
        return [dict(zip(EVENT_KEYS, r, strict=True)) for r in rows]
