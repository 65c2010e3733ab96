"""The results ledger (SQLite, WAL): every family and step of a manifest, one durable write
per state change, the runs and the webhook events.

``states`` holds the vocabulary (steps, states, legal transitions); ``store`` the ``Ledger``
and its named transitions; ``reads`` the queries; ``db`` the connection, transactions, lock
and group commit; ``schema`` the tables; ``records`` the plain records; ``runs`` and
``events`` their tables; ``binding`` the server a ledger belongs to; ``disk`` and ``lock`` its
files. Nothing here imports the stages above it.
"""

from batch.ledger.binding import SANDBOX_HOST, Binding, canonical_host
from batch.ledger.records import (
    FamilyRecord,
    NewFamily,
    Outcome,
    RunRecord,
    StepRecord,
    default_path,
)
from batch.ledger.states import STEPS, TRANSITIONS, IllegalTransition, State, Step
from batch.ledger.store import Ledger

__all__ = [
    "SANDBOX_HOST",
    "STEPS",
    "TRANSITIONS",
    "Binding",
    "FamilyRecord",
    "IllegalTransition",
    "Ledger",
    "NewFamily",
    "Outcome",
    "RunRecord",
    "State",
    "Step",
    "StepRecord",
    "canonical_host",
    "default_path",
]
