"""What a run is asked to do (``RunOptions``) and what it did (``RunSummary``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from batch.manifest import Problem

Stop = Literal["interrupted", "max-failures", "auth", "ledger", "server"]
#: What to do when a family's case already exists on the server (a lost ledger, or an
#: earlier import by other means): stop the family, take the case over, or create anyway.
IfExists = Literal["stop", "adopt", "create"]
#: Families in flight by default. Each new family costs two round trips (the look-up of its
#: case, then the create), so at 100 ms a round trip 32 in flight keep a 200-family import
#: above 10x the official CLI's one-at-a-time pace; the adaptive rate still backs off on 429s.
DEFAULT_CONCURRENCY = 32
#: Families named in a summary list (edited ones) at most; the rest are counted.
NAMED = 10
#: Seconds between two samples of the run's timeline (requests and 429s over time).
TIMELINE_STEP = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How a run behaves. Counts are families; times are seconds."""

    concurrency: int = DEFAULT_CONCURRENCY
    max_failures: int | None = None
    dry_run: bool = False
    skip_invalid: bool = False
    handle_signals: bool = False
    reconcile_skew: float = 120.0
    settle: float = 1.0
    if_exists: IfExists = "stop"
    #: Non-idempotent steps left unknown that the user checked did not take effect: send again.
    resend_unknown: frozenset[str] = frozenset()
    #: Create again the families whose cases ``revert`` moved to the trash (else skipped).
    recreate_reverted: bool = False
    timeline_step: float = TIMELINE_STEP
    #: At most this many families are worked on (created or updated) in this run; the rest
    #: wait for the next run (``--limit``).
    limit: int | None = None
    #: Where the run's settings came from (``name``, ``value``, ``origin``; never a secret),
    #: recorded with the run for ``status``.
    settings: tuple[Mapping[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"'concurrency' must be >= 1, got {self.concurrency}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"'limit' must be >= 1, got {self.limit}")
        if self.max_failures is not None and self.max_failures < 1:
            raise ValueError(f"'max_failures' must be >= 1, got {self.max_failures}")


@dataclass(slots=True)
class RunSummary:
    """What a run did, for the console, ``--json`` and the review workbook."""

    families: int = 0
    created: int = 0
    adopted: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    unknown: int = 0
    changed: int = 0
    invalid: int = 0
    #: Families the run never reached (it stopped first).
    not_attempted: int = 0
    #: The first families edited after their case was created (at most ``NAMED``).
    changed_families: list[str] = field(default_factory=list)
    #: Action steps that succeeded in this run, by step (``assign``: 2).
    actions: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    elapsed: float = 0.0
    dry_run: bool = False
    ran: bool = False
    stopped: Stop | None = None
    stop_reason: str | None = None
    plan: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: ``[seconds since the start, requests, 429s so far]`` about every ``TIMELINE_STEP`` s.
    timeline: list[list[float]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 all done; 1 some failed, unknown or skipped as invalid; 2 invalid manifest,
        nothing sent; 3 stopped early; 130 Ctrl-C."""
        if self.invalid and not self.ran:
            return 2
        if self.stopped == "interrupted":
            return 130
        if self.stopped is not None:
            return 3
        return 1 if self.failed or self.unknown or self.invalid else 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (problems as text)."""
        data = asdict(self)
        data["problems"] = [str(p) for p in self.problems]
        data["exit_code"] = self.exit_code
        return data
