"""The results ledger (SQLite, WAL): every family and step of a manifest, one durable write
per state change, the runs and the webhook events.

``ledger`` holds the ``Ledger``: its named transitions, reads, runs, webhook events and the
server it belongs to; ``database`` the connection it holds (transactions, lock, group commit);
``states`` the vocabulary (steps, states, legal transitions); ``schema`` the tables;
``records`` the plain records; ``files`` its files on disk and the process lock. Nothing here
imports the stages above it.
"""

from batch.ledger.ledger import Ledger
from batch.ledger.records import (
    SANDBOX_HOST,
    Binding,
    FamilyRecord,
    NewFamily,
    Outcome,
    RunRecord,
    StepRecord,
    canonical_host,
    default_path,
)
from batch.ledger.states import STEPS, TRANSITIONS, IllegalTransition, State, Step

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
