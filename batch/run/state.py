"""The one shared state of a run (``RunState``): the client, the ledger, the options, the
summary, and the way an outcome is recorded and counted.

Expected per-family failures are data: ``fail`` and ``unknown`` record them through the
ledger's named transitions and count them; only bugs propagate. ``halt`` stops the run (no new
family is taken; requests in flight finish).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import anyio

from batch.api import Client
from batch.errors import ApiError
from batch.ledger import Ledger, Outcome
from batch.manifest import Family
from batch.payload import Resolver
from batch.run.plan import Planner
from batch.run.progress import Progress
from batch.run.summary import RunOptions, RunSummary, Stop


@dataclass(slots=True, kw_only=True)
class RunState:
    """The shared state of one run (owned by its ``Runner``, shared with its ``CaseIdentity``)."""

    client: Client
    resolver: Resolver
    ledger: Ledger
    options: RunOptions
    progress: Progress
    summary: RunSummary
    planner: Planner
    stop: anyio.Event = field(default_factory=anyio.Event)
    run_id: int = 0

    def halt(self, why: Stop, reason: str, *, note: bool = True) -> None:
        """Stop taking families; the first reason is the one reported (and, with *note*,
        told at once: a stop before anything was sent is told by the summary alone)."""
        if self.summary.stopped is None:
            self.summary.stopped = why
            self.summary.stop_reason = reason
            if note:
                self.progress.note(reason if why == "interrupted" else f"stopping: {reason}")
        self.stop.set()

    async def fail(self, family: Family, step: str, outcome: Outcome, *,
                   case: str | None = None) -> None:
        """Record the step failed (with the family's rows, for review) and count it."""
        rows = json.dumps([{"number": r.number, "cells": dict(r.cells)} for r in family.rows])
        await self.ledger.record_failed(family.family_id, step, outcome, rows=rows,
                                        case_name=case, run_id=self.run_id)
        self.summary.failed += 1
        self.check_failures()

    def unknown(self, family_id: str, step: str, message: str, exc: ApiError | None = None, *,
                count: bool = False) -> None:
        """Record the step's outcome as unknown; *count* it as an unknown family."""
        outcome = Outcome(kind=exc.kind if exc else "Unknown", message=message,
                          status=exc.status if exc else None)
        self.ledger.record_unknown(family_id, step, outcome, run_id=self.run_id)
        if count:
            self.count_unknown()

    def count_unknown(self) -> None:
        """One more family whose outcome is unknown."""
        self.summary.unknown += 1
        self.check_failures()

    def check_failures(self) -> None:
        """Stop once ``--max-failures`` families failed or are unknown."""
        limit = self.options.max_failures
        if limit is not None and self.summary.failed + self.summary.unknown >= limit:
            self.halt("max-failures", f"{limit} {'family' if limit == 1 else 'families'} failed "
                      f"(--max-failures {limit})")


def refused(exc: ApiError) -> str:
    """Why a run stops when the server refuses the credentials, in one sentence."""
    text = exc.message
    if text.startswith(LOGIN_REFUSED):
        return "the server refused the login for " + text.removeprefix(LOGIN_REFUSED)
    return text if text.startswith("the server") else f"the server refused the login: {text}"


#: How the transport words a refused login (``login refused for <user>: <why>``).
LOGIN_REFUSED = "login refused for "


def outcome_of(exc: ApiError, message: str | None = None) -> Outcome:
    """The ledger's record of an API error (class name, message, HTTP status)."""
    return Outcome(kind=exc.kind, message=exc.message if message is None else message,
                   status=exc.status)
