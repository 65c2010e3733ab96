"""Undoing a run: the cases a ledger's runs created, moved to Emedgene's trash.

``plan_revert`` decides, case by case, from the ledger and each case's status read from the
server (``GET /api/test/{case}/info``); ``execute_revert`` sends ``PUT /api/test/{case}``
``{"status": "trash"}`` (the route the ``set_status`` step uses) for the cases the plan moves.

Only a case a run of this ledger created is moved; a case the run found on the server and
adopted, and a case whose status moved on since the run left it (delivered, finalized, a custom
status, a reanalysis), only when asked. Each move is a ``revert`` step of the family in the
ledger, marked ``sending`` (committed) before it goes out; a lost answer leaves it ``unknown``,
and the next revert reads the case's status: in the trash, it is recorded done without a
request (moving to the trash twice changes nothing, but nothing is sent twice either).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import anyio

from batch.errors import (
    AmbiguousCreate,
    ApiError,
    AuthError,
    NotFound,
    RetriesExhausted,
    UsageError,
)
from batch.ledger import FamilyRecord, Ledger, Outcome, State
from batch.run.pool import run_pool

if TYPE_CHECKING:
    from batch.api import Client

#: The status a reverted case is moved to.
TRASH = "trash"
#: Statuses the system gives a new case on its own, before anyone works on it.
PIPELINE = frozenset({"pending", "uploading", "in_progress", "issue_reported"})
#: The step a revert is recorded as.
STEP = "revert"

#: What the plan does with a case: move it (``trash``), record it as already there
#: (``in_trash``: in the trash on the server, its revert not yet recorded), nothing (``done``:
#: reverted before), or leave it alone (``adopted``, ``moved``, ``missing``, ``unread``).
Kind = Literal["trash", "in_trash", "done", "adopted", "moved", "missing", "unread"]
LEFT_ALONE: tuple[Kind, ...] = ("adopted", "moved", "missing", "unread")


@dataclass(frozen=True, slots=True, kw_only=True)
class RevertOptions:
    """Which cases a revert takes, and how far it goes."""

    #: One run's creates; None: the creates of every run of the ledger.
    run: int | None = None
    #: Only these families (empty: all).
    only: frozenset[str] = frozenset()
    include_adopted: bool = False
    include_moved: bool = False
    dry_run: bool = False
    concurrency: int = 8
    #: The status each family's ``Set Status`` asked for (from the manifest): where the run
    #: left the case, so that status is not taken for a move by someone else.
    left_at: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Item:
    """One case of the plan: its family, name, current status and what is done with it."""

    family_id: str
    case: str
    kind: Kind
    status: str | None = None
    why: str = ""


@dataclass(slots=True)
class RevertPlan:
    """What a revert will do, before anything is sent."""

    scope: str
    items: list[Item]

    def of(self, *kinds: Kind) -> list[Item]:
        """The items of these kinds, in ledger order."""
        return [item for item in self.items if item.kind in kinds]

    @property
    def to_send(self) -> list[Item]:
        """The cases that will be moved to the trash."""
        return self.of("trash")


@dataclass(slots=True)
class RevertSummary:
    """What a revert did."""

    plan: RevertPlan
    trashed: int = 0
    recorded: int = 0
    failed: list[Item] = field(default_factory=list)
    unknown: list[Item] = field(default_factory=list)
    stopped: str | None = None
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        """0 done; 1 some cases failed or unknown; 3 stopped (authentication refused)."""
        if self.stopped is not None:
            return 3
        return 1 if self.failed or self.unknown else 0


# -- which cases ----------------------------------------------------------------------------


def created_cases(ledger: Ledger, options: RevertOptions) -> tuple[str, list[FamilyRecord]]:
    """The families whose case a run of *ledger* made (or adopted), in ledger order, limited
    to ``--run`` and ``--only``; and the words saying which runs these are.

    ``UsageError`` for a ``--run`` that created nothing and for ``--only`` families the ledger
    does not hold."""
    held, records = _with_cases(ledger)
    unknown = sorted(options.only - held)
    if unknown:
        raise UsageError(f"--only: not in ledger {ledger.path}: {', '.join(unknown)}")
    runs = sorted({r.create.run_id for r in records if r.create and r.create.run_id})
    if options.run is not None:
        if options.run not in runs:
            made = ", ".join(map(str, runs)) or "none"
            raise UsageError(f"--run {options.run}: that run created no case in ledger "
                             f"{ledger.path} (runs that did: {made})")
        records = [r for r in records if r.create and r.create.run_id == options.run]
        scope = f"run {options.run}"
    else:
        listed = ", ".join(map(str, runs))
        scope = f"every run of this ledger (run{'s' if len(runs) != 1 else ''} {listed})"
    if options.only:
        records = [r for r in records if r.family_id in options.only]
    return scope, records


def _with_cases(ledger: Ledger) -> tuple[set[str], list[FamilyRecord]]:
    """Every family id of *ledger*, and the families whose create succeeded, in one pass."""
    held: set[str] = set()
    records: list[FamilyRecord] = []
    for record in ledger.iter_families():  # streamed, however large the ledger
        held.add(record.family_id)
        create = record.create
        if record.case_name and create is not None and create.state is State.SUCCEEDED:
            records.append(record)
    return held, records


# -- the plan -------------------------------------------------------------------------------


async def plan_revert(client: Client, ledger: Ledger, options: RevertOptions) -> RevertPlan:
    """Decide what happens to each case; reads statuses, sends nothing, writes nothing."""
    scope, records = created_cases(ledger, options)
    items = [_first_look(record, options) for record in records]
    await run_pool([i for i in items if i.kind in ("trash", "adopted")],
                   lambda item: _read_status(client, item, options),
                   concurrency=options.concurrency)
    return RevertPlan(scope, items)


def _first_look(record: FamilyRecord, options: RevertOptions) -> Item:
    """What the ledger alone says: reverted before, adopted, or to be read."""
    case = record.case_name or ""
    revert = record.steps.get(STEP)
    if revert is not None and revert.state is State.SUCCEEDED:
        return Item(record.family_id, case, "done", TRASH, "moved to the trash by revert")
    if record.adopted is not False and not options.include_adopted:
        why = ("adopted: found on the server, not created by this ledger" if record.adopted
               else "origin not recorded (written before this ledger kept it): taken as adopted")
        return Item(record.family_id, case, "adopted", why=why + " (--include-adopted)")
    return Item(record.family_id, case, "trash")


async def _read_status(client: Client, item: Item, options: RevertOptions) -> None:
    """The case's status from the server, and what it means for the plan."""
    try:
        info = await client.case_info(item.case)
    except AuthError:
        raise
    except ApiError as exc:
        if item.kind == "trash":
            missing = isinstance(exc, NotFound)
            item.kind = "missing" if missing else "unread"
            item.why = ("not found on the server" if missing
                        else f"its status could not be read: {exc.message}")
        return
    status = info.get("status")
    item.status = status if isinstance(status, str) and status else None
    if item.kind == "adopted":
        return  # left alone whatever its status; the plan shows it
    if item.status == TRASH:
        item.kind, item.why = "in_trash", "already in the trash"
    elif not options.include_moved and _moved(item, options):
        item.kind = "moved"
        item.why = "moved on since the run left it (--include-moved)"


def _moved(item: Item, options: RevertOptions) -> bool:
    """Whether the case's status is past where the run left it: any status but the pipeline's
    own and the one the family's ``Set Status`` asked for (an unknown status too)."""
    status = item.status
    return status is None or not (status in PIPELINE or status == options.left_at.get(
        item.family_id))


# -- sending --------------------------------------------------------------------------------


async def execute_revert(client: Client, ledger: Ledger, plan: RevertPlan,
                         options: RevertOptions, *, manifest: str | None = None) -> RevertSummary:
    """Move the plan's cases to the trash; record each as a ``revert`` step."""
    summary = RevertSummary(plan, dry_run=options.dry_run)
    if options.dry_run or not plan.of("trash", "in_trash"):
        return summary  # nothing to send or record: no run either
    run_id = ledger.begin_run(STEP, manifest_path=manifest, host=client.host, options={
        "run": options.run, "only": sorted(options.only),
        "include_adopted": options.include_adopted, "include_moved": options.include_moved})
    for item in plan.of("in_trash"):  # seen done: recorded, nothing sent
        await ledger.record_succeeded(item.family_id, STEP, case_name=item.case, run_id=run_id)
        summary.recorded += 1
    stop = anyio.Event()

    async def one(item: Item) -> None:
        await _send(client, ledger, item, run_id, summary, stop)

    try:
        await run_pool(plan.to_send, one, concurrency=options.concurrency, stop=stop)
    finally:
        ledger.end_run(run_id, exit_code=summary.exit_code, counts=_counts(summary))
    return summary


async def _send(client: Client, ledger: Ledger, item: Item, run_id: int,
                summary: RevertSummary, stop: anyio.Event) -> None:
    fid = item.family_id
    await ledger.mark_sending(fid, STEP, run_id=run_id)
    try:
        await client.set_status(item.case, TRASH)
    except AuthError as exc:  # 401/403: the server did not act on it
        ledger.record_refused(fid, STEP, _outcome(exc))
        summary.stopped = f"authentication refused: {exc.message}"
        stop.set()
        return
    except (AmbiguousCreate, RetriesExhausted) as exc:
        ledger.record_unknown(fid, STEP, _outcome(exc), run_id=run_id)
        summary.unknown.append(item)
        return
    except ApiError as exc:
        await ledger.record_failed(fid, STEP, _outcome(exc), case_name=item.case, run_id=run_id)
        item.why = exc.message
        summary.failed.append(item)
        return
    except anyio.get_cancelled_exc_class():
        ledger.record_unknown(fid, STEP, Outcome(kind="Unknown", message=(
            "cancelled while the request was in flight")), run_id=run_id)
        raise
    await ledger.record_succeeded(fid, STEP, case_name=item.case, run_id=run_id)
    summary.trashed += 1


def _outcome(exc: ApiError) -> Outcome:
    return Outcome(kind=exc.kind, message=exc.message, status=exc.status)


def _counts(summary: RevertSummary) -> dict[str, int]:
    plan = summary.plan
    counts: dict[str, int] = {kind: len(plan.of(kind)) for kind in ("done", *LEFT_ALONE)}
    counts.update(trashed=summary.trashed, recorded=summary.recorded,
                  failed=len(summary.failed), unknown=len(summary.unknown))
    return counts

