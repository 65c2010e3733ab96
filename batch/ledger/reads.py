"""Reading the ledger: families with their steps, counts and failures, from few queries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from batch.ledger.db import Database
from batch.ledger.records import FamilyRecord, StepRecord
from batch.ledger.states import State

# adopted: the origin of the family's case, when it is the case the family holds now
_FAMILY = ("SELECT f.family_id, f.seq, f.proband_sample, f.row_hash, f.created_hash,"
           " f.case_name, f.note, o.adopted FROM families f LEFT JOIN origins o"
           " ON o.family_id = f.family_id AND o.case_name = f.case_name")
_STEP = ("SELECT step, state, attempts, http_status, error_class, error_message, case_name,"
         " started_at, updated_at, server_started_at, run_id FROM steps")


class Reads(Database):
    """The queries that plan a run, fill the review outputs and answer ``status``."""

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
        cur = self._conn.cursor()
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


def _family(row: Any) -> FamilyRecord:
    """A family record from the first eight columns of ``_FAMILY``."""
    adopted = None if row[7] is None else bool(row[7])
    fid, seq, sample, row_hash, created_hash, case, note = row[:7]
    return FamilyRecord(fid, seq, sample, row_hash, created_hash, case, note, adopted)
