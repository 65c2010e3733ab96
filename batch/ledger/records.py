"""What the ledger hands out and takes in: plain records of families, steps, runs, open
webhook work, and the server a ledger belongs to (with how a host is compared and shown)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from batch.ledger.states import State


def default_path(manifest: Path, *, sandbox: bool = False) -> Path:
    """The ledger next to *manifest*: ``<stem>.ledger.sqlite``, or for runs against the
    built-in sandbox ``<stem>.sandbox.ledger.sqlite`` (so that one never stands in the way
    of the other)."""
    kind = ".sandbox" if sandbox else ""
    return manifest.with_name(f"{manifest.stem}{kind}.ledger.sqlite")


@dataclass(frozen=True, slots=True, kw_only=True)
class NewFamily:
    """A family to register: its id, place in the manifest, proband sample, hash and steps."""

    family_id: str
    seq: int
    proband_sample: str
    row_hash: str
    steps: Sequence[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a failed or uncertain step records: error class, message, HTTP status."""

    kind: str
    message: str
    status: int | None = None


@dataclass(slots=True)
class StepRecord:
    """One step of one family as the ledger holds it."""

    step: str
    state: State
    attempts: int = 0
    http_status: int | None = None
    error_class: str | None = None
    error_message: str | None = None
    case_name: str | None = None
    started_at: float | None = None
    updated_at: float | None = None
    #: The server's clock when the step was first sent (None: no ``Date`` was seen).
    server_started_at: float | None = None
    #: The run that last moved the step (for a succeeded create: the run that made its case).
    run_id: int | None = None


@dataclass(slots=True)
class FamilyRecord:
    """A family and its steps as the ledger holds them."""

    family_id: str
    seq: int
    proband_sample: str
    row_hash: str
    created_hash: str | None
    case_name: str | None
    note: str | None
    #: True: the case was found on the server and adopted; False: a run created it; None:
    #: not known (no case, or recorded before the ledger kept it).
    adopted: bool | None = None
    steps: dict[str, StepRecord] = field(default_factory=dict)

    @property
    def create(self) -> StepRecord | None:
        """The create step, if the family has one."""
        return self.steps.get("create")

    @property
    def reverted(self) -> bool:
        """``emg-batch revert`` moved (or began to move) the family's case to the trash."""
        revert = self.steps.get("revert")
        return revert is not None and (revert.state is not State.PENDING or revert.attempts > 0)

    @property
    def done(self) -> bool:
        """Every step of the family succeeded."""
        return bool(self.steps) and all(s.state is State.SUCCEEDED for s in self.steps.values())


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One invocation recorded in the ledger."""

    id: int
    command: str
    manifest_path: str | None
    host: str | None
    options: dict[str, Any]
    started_at: float
    ended_at: float | None
    exit_code: int | None
    counts: dict[str, Any] | None
    pid: int | None = None
    """The process that ran it."""


@dataclass(frozen=True, slots=True)
class OpenCase:
    """A case with events neither handled nor given up: the newest one, attempts so far."""

    case: str
    upto: int
    attempts: int


#: The host of a ledger made with ``--sandbox`` (an in-process sandbox on a new port each time).
SANDBOX_HOST = "sandbox"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Binding:
    """The server a ledger belongs to: its base URL (or ``sandbox``) and the account."""

    host: str
    account: str | None = None

    def __str__(self) -> str:
        return shown(self.host) + (f" (account {self.account})" if self.account else "")


def canonical_host(host: str) -> str:
    """*host* as a ledger compares it: scheme and name in lower case, no default port, no
    trailing ``/``."""
    if host == SANDBOX_HOST:
        return host
    parts = urlsplit(host.strip())
    scheme = parts.scheme.lower()
    name = (parts.hostname or "").lower()
    name = f"[{name}]" if ":" in name else name
    try:
        port = parts.port
    except ValueError:  # not a number: keep what was given, it cannot match another anyway
        return host.strip().rstrip("/")
    netloc = name if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{name}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def shown(host: str) -> str:
    """A ledger's host in words."""
    return "the built-in sandbox (--sandbox)" if host == SANDBOX_HOST else host
