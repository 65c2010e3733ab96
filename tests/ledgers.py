"""Families registered straight in a ledger, for tests that set a scenario up by hand."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from batch.ledger import Ledger, NewFamily, State


def family(family_id: str, seq: int = 0, *, sample: str = "S", row_hash: str = "h",
           steps: Sequence[str] = ("create",)) -> NewFamily:
    """A family to register (``Ledger.add_families``), its steps ``pending``."""
    return NewFamily(family_id=family_id, seq=seq, proband_sample=sample, row_hash=row_hash,
                     steps=tuple(steps))


def force_state(ledger: Ledger, family_id: str, step: str, state: State) -> None:
    """Rewrite a step's state past the transition rules, on a connection of its own: the
    ledger a crash or an older version could have left, which a run must cope with."""
    with sqlite3.connect(ledger.path) as conn:
        conn.execute("UPDATE steps SET state = ? WHERE family_id = ? AND step = ?",
                     (str(state), family_id, step))
