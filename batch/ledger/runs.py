"""The ``runs`` table: one row per invocation (command, manifest, host, options, outcome)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from batch.ledger.db import Database
from batch.ledger.lock import holder
from batch.ledger.records import RunRecord


class RunLog(Database):
    """Invocations recorded in the ledger."""

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
