"""The run engine: validate, plan, then run every family's step chain on a bounded pool.

Each family is a chain ``create`` → ``assign`` → ``preset_group`` → ``set_status`` (only the
steps its columns ask for). A step is committed as ``sending`` before its request goes out
(creates a window at a time, see ``Runner._reserving``), and every outcome is committed; a
create's success may ride with the next commit instead of being waited for, since a lost one
is reconciled like any interrupted create. Expected failures (4xx, retries exhausted,
ambiguous creates) are recorded and the run moves on; only bugs propagate. A create whose
outcome is unknown is reconciled by looking the case up, never blindly re-sent.
"""

from __future__ import annotations

import functools
import itertools
import json
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import anyio

from batch.client import ApiResolver, Client
from batch.errors import (
    AmbiguousCreate,
    ApiError,
    AuthError,
    LedgerError,
)
from batch.ledger import FamilyRecord, Ledger, State
from batch.manifest import Family, Manifest, Problem
from batch.payload import BuildError, build_payload, check_family, check_manifest_wide
from batch.plan import FamilyPlan, family_steps, is_foreign, plan_family
from batch.pool import run_pool
from batch.progress import Progress, SilentProgress

Stop = Literal["interrupted", "max-failures", "auth", "ledger", "server"]
#: Families a validation worker takes at once; checks mostly hit the look-up cache.
CHECK_BATCH = 32
#: Families a run worker takes at once (it still sends one request at a time).
RUN_BATCH = 4
#: Creates marked ``sending`` together, in one commit, before they are handed out.
RESERVE_WINDOW = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How a run behaves. Counts are families; times are seconds."""

    concurrency: int = 8
    max_failures: int | None = None
    dry_run: bool = False
    skip_invalid: bool = False
    handle_signals: bool = False
    reconcile_skew: float = 120.0
    settle: float = 1.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"'concurrency' must be >= 1, got {self.concurrency}")
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


class _Undecided(Exception):
    """Reconciliation could not tell whether the case exists."""


class Runner:
    """Runs one manifest against one client and ledger. Use :func:`run_manifest`."""

    def __init__(
        self,
        manifest: Manifest,
        *,
        client: Client,
        ledger: Ledger,
        options: RunOptions,
        progress: Progress,
    ) -> None:
        self.manifest = manifest
        self.client = client
        self.resolver = ApiResolver(client)
        self.ledger = ledger
        self.options = options
        self.progress = progress
        self.summary = RunSummary(dry_run=options.dry_run)
        self.stop = anyio.Event()
        self.run_id = 0
        self._records: dict[str, FamilyRecord] = {}
        self._invalid: set[str] = set()
        self._claimed: dict[str, str] = {}
        self._new: list[tuple[str, int, str, str, tuple[str, ...]]] = []
        self._rehash: list[tuple[str, str]] = []
        self._pool_scope = anyio.CancelScope()
        self._reserved: set[str] = set()

    # -- phases ----------------------------------------------------------------------------

    async def run(self) -> RunSummary:
        """Validate, plan and run; never raises for per-family failures."""
        started = time.monotonic()
        self._records = self.ledger.snapshot()
        self._claimed = {r.case_name: fid for fid, r in self._records.items() if r.case_name}
        if is_foreign(self._records, self.manifest.family_ids):
            raise LedgerError(
                f"ledger {self.ledger.path} holds {len(self._records)} families, none of them in "
                f"{self.manifest.path.name}: it belongs to another manifest. Start over with a new "
                "--ledger PATH, or delete that file."
            )
        self.summary.families = len(self.manifest)
        try:
            await self._validate()
        except* AuthError as group:
            self._halt("auth", f"authentication refused: {_first(group).message}")
        except* ApiError as group:
            self._halt("server", f"look-ups failed, nothing was sent: {_first(group).message}")
        if self.summary.stopped is not None:
            self._collect_stats()
            self.summary.elapsed = time.monotonic() - started
            return self.summary
        if self.summary.invalid and not self.options.skip_invalid:
            self.summary.elapsed = time.monotonic() - started
            return self.summary
        self._register()
        try:
            await self._execute()
        except* LedgerError as group:
            self.summary.stopped = "ledger"
            self.summary.stop_reason = str(group.exceptions[0])
        self._collect_stats()
        self.summary.elapsed = time.monotonic() - started
        return self.summary

    async def _validate(self) -> None:
        """Check every family (one pass over the manifest) and note what to register."""
        done = sum(1 for fid in self.manifest.family_ids if self._is_done(fid))
        # Cross-family checks guard what is still to be sent; a finished resume skips them.
        problems = [] if done == len(self.manifest) else list(check_manifest_wide(self.manifest))
        invalid: set[str] = {p.family for p in problems if p.severity == "error" and p.family}
        file = self.manifest.path.name

        async def check(item: tuple[int, str]) -> None:
            seq, family_id = item
            if self._is_done(family_id):
                self.progress.advance(failed=len(invalid), requests=self.client.stats.requests)
                return  # created already: nothing to check or register (resume stays fast)
            family = self.manifest.family(family_id)
            self._note_for_register(seq, family)
            if self._needs_check(family):
                found = await check_family(family, self.resolver, file=file)
                problems.extend(found)
                if any(p.severity == "error" for p in found):
                    invalid.add(family.family_id)
            self.progress.advance(failed=len(invalid), requests=self.client.stats.requests)

        self.progress.phase("validating", total=len(self.manifest))
        await run_pool(enumerate(self.manifest.family_ids), check,
                       concurrency=max(self.options.concurrency, 16), batch=CHECK_BATCH)
        problems.sort(key=lambda p: (p.row or 0))
        self.summary.problems = problems
        self.summary.invalid = len(invalid)
        self._invalid = invalid

    def _is_done(self, family_id: str) -> bool:
        """The family's case exists (ledger): no check, no registration needed."""
        record = self._records.get(family_id)
        create = record.create if record else None
        return bool(record and record.case_name and create and create.state is State.SUCCEEDED)

    def _needs_check(self, family: Family) -> bool:
        if family.case_id:
            return False
        record = self._records.get(family.family_id)
        create = record.create if record else None
        return not (create and create.state is State.SUCCEEDED)

    def _note_for_register(self, seq: int, family: Family) -> None:
        """Remember new families and edited uncreated ones, so registering needs no pass."""
        record = self._records.get(family.family_id)
        row_hash = self.manifest.family_hash(family.family_id)
        if record is None:
            self._new.append((family.family_id, seq, family.proband_sample, row_hash,
                              family_steps(family)))
        elif record.row_hash != row_hash and record.case_name is None:
            self._rehash.append((family.family_id, row_hash))

    def _register(self) -> None:
        """Add new families to the ledger as pending, in batches; refresh edited ones."""
        new = sorted(n for n in self._new if n[0] not in self._invalid)
        for start in range(0, len(new), 2000):
            self.ledger.add_families(new[start:start + 2000])
        for family_id, row_hash in self._rehash:
            if family_id not in self._invalid:
                self.ledger.update_family(family_id, row_hash=row_hash)
        self._new, self._rehash = [], []

    def _plans(self) -> Iterator[tuple[Family, FamilyPlan]]:
        for family_id in self.manifest.family_ids:
            if family_id in self._invalid or self._unchanged_and_done(family_id):
                self.summary.plan["skip"] = self.summary.plan.get("skip", 0) + 1
                if family_id not in self._invalid:
                    self.summary.skipped += 1
                continue
            family = self.manifest.family(family_id)
            plan = plan_family(family, self._records.get(family_id))
            self.summary.plan[plan.kind] = self.summary.plan.get(plan.kind, 0) + 1
            yield family, plan

    def _unchanged_and_done(self, family_id: str) -> bool:
        """Created, nothing else asked for, rows as created: skip without building it."""
        if self.manifest.has_action_columns or not self._is_done(family_id):
            return False
        record = self._records[family_id]
        return record.created_hash == self.manifest.family_hash(family_id)

    async def _execute(self) -> None:
        self.summary.ran = True
        if self.options.dry_run:
            for _ in self._plans():
                pass
            return
        self.run_id = self.ledger.begin_run(
            "run", manifest_path=str(self.manifest.path), host=self.client.host,
            options={"concurrency": self.options.concurrency,
                     "max_failures": self.options.max_failures},
        )
        self.progress.phase("running", total=len(self.manifest) - self.summary.invalid)

        async def work(item: tuple[Family, FamilyPlan]) -> None:
            await self._family(*item)
            self.progress.advance(failed=self.summary.failed + self.summary.unknown,
                                  requests=self.client.stats.requests)

        try:
            async with anyio.create_task_group() as outer:
                if self.options.handle_signals:
                    outer.start_soon(self._watch_signals)
                with anyio.CancelScope() as self._pool_scope:
                    await run_pool(self._reserving(self._plans()), work,
                                   concurrency=self.options.concurrency, stop=self.stop,
                                   batch=RUN_BATCH)
                outer.cancel_scope.cancel()
        finally:
            if self._reserved:  # marked sending, never reached: the run stopped first
                self.ledger.release(sorted(self._reserved), "create")
                self._reserved.clear()
            self.ledger.flush()  # successes queued without waiting (see _send_create)
        self._collect_stats()
        self.ledger.end_run(self.run_id, exit_code=self.summary.exit_code,
                            counts=self.summary.as_dict())

    def _reserving(self, plans: Iterator[tuple[Family, FamilyPlan]],
                   ) -> Iterator[tuple[Family, FamilyPlan]]:
        """Mark creates ``sending`` a window at a time, in one commit, before handing them out.

        A commit costs far more than the writes in it, and every create must be marked before
        it is sent, so a window of them shares one. A family marked but never reached (the run
        stopped first) is put back to ``pending`` at the end; after a crash it is reconciled
        like any interrupted create: looked up, not found, created. At most a window plus
        what the pool holds is ever marked ahead.
        """
        while window := list(itertools.islice(plans, RESERVE_WINDOW)):
            creates = [f for f, plan in window if plan.create and not plan.reconcile]
            if creates and not self.stop.is_set():
                self.ledger.commit([functools.partial(self._mark_sending, f) for f in creates])
                self._reserved.update(f.family_id for f in creates)
            yield from window

    def _mark_sending(self, family: Family) -> None:
        """The write before a create goes out (attempt counted, start time stamped)."""
        fid = family.family_id
        record = self._records.get(fid)
        if record is not None and record.proband_sample != family.proband_sample:
            # the name sent is kept: reconciliation looks it up if the row is edited later
            self.ledger.update_family(fid, proband_sample=family.proband_sample)
        self.ledger.set_step(fid, "create", State.SENDING, attempt=True, run_id=self.run_id)

    def _unreserve(self, family_id: str) -> None:
        """A family marked ``sending`` ahead of time that will not be sent after all."""
        if family_id in self._reserved:
            self._reserved.discard(family_id)
            self.ledger.release([family_id], "create")

    async def _watch_signals(self) -> None:
        """First Ctrl-C (or SIGTERM): take no new family. Second: cancel what is in flight."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if not self.stop.is_set():
                    self._halt("interrupted", "interrupted: finishing requests in flight "
                               "(Ctrl-C again to cancel them)")
                else:
                    self._pool_scope.cancel()

    def _halt(self, why: Stop, reason: str) -> None:
        if self.summary.stopped is None:
            self.summary.stopped = why
            self.summary.stop_reason = reason
            self.progress.note(reason)
        self.stop.set()

    def _collect_stats(self) -> None:
        stats = self.client.stats
        self.summary.requests = stats.requests
        self.summary.retries = stats.retries
        self.summary.rate_limited = stats.rate_limited

    # -- one family ------------------------------------------------------------------------

    async def _family(self, family: Family, plan: FamilyPlan) -> None:
        if self.stop.is_set():
            return
        case = plan.case_name
        if plan.create:
            case = await self._create(family, plan)
            if case is None:
                return
        elif not plan.steps:
            self.summary.skipped += 1
        if plan.changed:
            self.summary.changed += 1
            self.ledger.update_family(
                family.family_id,
                note="rows edited after the case was created; not re-created",
            )
        if case is None or not plan.steps:
            return
        for step in plan.steps:
            if not await self._action(step, family, case):
                return
        self.summary.updated += 1

    async def _create(self, family: Family, plan: FamilyPlan) -> str | None:
        if plan.reconcile:
            found = await self._reconcile_or_record(family)
            if found != "absent":
                return found
        try:
            payload = await build_payload(family, self.resolver)
        except BuildError as exc:
            self._unreserve(family.family_id)
            await self._fail(family, "create", "BuildError", exc.message)
            return None
        except AuthError as exc:
            self._halt("auth", f"authentication refused: {exc.message}")
            return None
        except ApiError as exc:
            self._unreserve(family.family_id)
            await self._fail(family, "create", exc.kind, f"look-up failed: {exc.message}",
                             exc.status)
            return None
        return await self._send_create(family, payload, final=not plan.steps)

    async def _reconcile_or_record(self, family: Family) -> str | None:
        """Reconcile an uncertain create: the adopted case, "absent", or None (recorded)."""
        fid = family.family_id
        try:
            found = await self._reconcile(family)
        except _Undecided as exc:
            self._unknown(fid, "create", f"needs review: {exc}", count=True)
            return None
        except AuthError as exc:
            self._halt("auth", f"authentication refused: {exc.message}")
            return None
        except ApiError as exc:
            self._unknown(fid, "create", f"could not look the case up: {exc.message}",
                          count=True)
            return None
        if found is None:
            return "absent"
        return await self._created(family, found, adopted=True)

    async def _send_create(self, family: Family, payload: Mapping[str, Any], *,
                           final: bool) -> str | None:
        """One create attempt: the case name, or None when recorded as failed or unknown.

        When no step follows (*final*), the success is committed with the next write instead
        of waiting for it: lost with a killed process, it leaves the create ``sending``, which
        the next run reconciles by looking the case up.
        """
        fid = family.family_id
        if fid in self._reserved:
            self._reserved.discard(fid)  # marked sending with its window (see _reserving)
        else:
            await self.ledger.durably(self._mark_sending, family)
        try:
            result = await self.client.create_case(payload)
        except AmbiguousCreate as exc:
            self._unknown(fid, "create", exc.message, exc)
            return await self._after_ambiguous(family)
        except AuthError as exc:
            # 401/403: the server did not act on this request
            self.ledger.set_step(fid, "create", State.PENDING, error_class=exc.kind,
                                 error_message=exc.message)
            self._halt("auth", f"authentication refused: {exc.message}")
            return None
        except ApiError as exc:
            await self._fail(family, "create", exc.kind, exc.message, exc.status)
            return None
        except anyio.get_cancelled_exc_class():
            self._unknown(fid, "create", "cancelled while the create was in flight")
            raise
        assert result is not None  # a real create always answers with a name
        return await self._created(family, result.name, adopted=False, status=result.status,
                                   wait=not final)

    async def _after_ambiguous(self, family: Family) -> str | None:
        """After a lost answer: adopt the case if it is already visible, else leave it unknown.

        Never re-sent in the same run: a slow server may still be creating it. The next run
        looks it up again before anything is sent.
        """
        await anyio.sleep(self.options.settle)
        try:
            found = await self._reconcile(family)
        except (_Undecided, ApiError):
            found = None
        if found is not None:
            return await self._created(family, found, adopted=True)
        self.summary.unknown += 1
        self._maybe_stop()
        return None

    async def _created(self, family: Family, case: str, *, adopted: bool,
                       status: int = 201, wait: bool = True) -> str:
        record = (self.ledger.record_created, family.family_id, case)
        if wait:
            await self.ledger.durably(*record, http_status=status, run_id=self.run_id)
        else:
            self.ledger.later(*record, http_status=status, run_id=self.run_id)
        self._claimed[case] = family.family_id
        if adopted:
            self.summary.adopted += 1
        else:
            self.summary.created += 1
        return case

    async def _reconcile(self, family: Family) -> str | None:
        """Find the case a lost create may have made; None when it certainly does not exist."""
        record = self.ledger.family(family.family_id)
        sent = record.proband_sample if record else ""
        samples = [s for s in dict.fromkeys((sent, family.proband_sample)) if s]
        if not samples:
            raise _Undecided("the proband has no BioSample Name to look its case up by")
        create = record.create if record else None
        since = (create.started_at if create and create.started_at else time.time())
        since -= self.options.reconcile_skew
        for sample in samples:
            for hit in await self.client.find_samples(sample, exact=True):
                case = str(hit.get("note") or "")
                owner = self._claimed.get(case)
                if not case.startswith("EMG") or owner not in (None, family.family_id):
                    continue
                if await self._is_ours(case, sample, since):
                    return case
        return None

    async def _is_ours(self, case: str, sample: str, since: float) -> bool:
        data = await self.client.get_case(case)
        created = data.get("created")
        try:
            created_at = parsedate_to_datetime(str(created)).timestamp()
        except (TypeError, ValueError):
            raise _Undecided(f"case {case} has no readable creation time") from None
        proband = (data.get("patients") or {}).get("proband") or {}
        names = {proband.get("fastq_sample"), proband.get("pending_sample_name")}
        return created_at >= since and sample in names

    # -- actions ---------------------------------------------------------------------------

    async def _action(self, step: str, family: Family, case: str) -> bool:
        """Run one action step; record the outcome. False stops the family's chain."""
        fid = family.family_id
        sent = False
        try:
            if step == "preset_group" and await self._preset_group_exists(family, case):
                await self.ledger.durably(self.ledger.set_step, fid, step, State.SUCCEEDED,
                                          case_name=case, run_id=self.run_id)
                return True
            ids: list[int] = []
            if step == "assign":
                ids = await self.client.user_ids(list(family.actions.assign_to))
            await self.ledger.durably(self.ledger.set_step, fid, step, State.SENDING,
                                      attempt=True, run_id=self.run_id)
            sent = True
            await self._send_action(step, family, case, ids)
        except _Undecided as exc:
            self._unknown(fid, step, f"needs review: {exc}", count=True)
            return False
        except AmbiguousCreate as exc:
            self._unknown(fid, step, exc.message, exc, count=True)
            return False
        except AuthError as exc:
            if sent:  # 401/403: the server did not act on this request
                self.ledger.set_step(fid, step, State.PENDING, error_class=exc.kind,
                                     error_message=exc.message)
            self._halt("auth", f"authentication refused: {exc.message}")
            return False
        except ApiError as exc:
            if not sent and self._uncertain(fid, step):
                self._unknown(fid, step, f"could not check: {exc.message}", exc, count=True)
            else:
                await self._fail(family, step, exc.kind, exc.message, exc.status, case=case)
            return False
        except anyio.get_cancelled_exc_class():
            if sent:
                self._unknown(fid, step, "cancelled while the request was in flight")
            raise
        await self.ledger.durably(self.ledger.set_step, fid, step, State.SUCCEEDED,
                                  case_name=case, run_id=self.run_id)
        return True

    async def _send_action(self, step: str, family: Family, case: str, ids: list[int]) -> None:
        actions = family.actions
        if step == "assign":
            await self.client.assign(case, ids)
        elif step == "preset_group":
            await self.client.create_preset_group(
                case, name=actions.preset_group or "", gene_lists=list(actions.preset_gene_lists))
        elif step == "set_status":
            await self.client.set_status(case, actions.set_status or "")

    def _uncertain(self, family_id: str, step: str) -> bool:
        record = self.ledger.family(family_id)
        previous = record.steps.get(step) if record else None
        return previous is not None and previous.state in (State.SENDING, State.UNKNOWN)

    async def _preset_group_exists(self, family: Family, case: str) -> bool:
        """After a lost answer, whether the preset group is on the case (never created twice)."""
        if not self._uncertain(family.family_id, "preset_group"):
            return False
        data = await self.client.get_case(case)
        if "preset_groups" not in data:
            raise _Undecided(
                f"case {case} does not list its preset groups; check it in Emedgene, then "
                "remove 'Preset Group' from the row if the group is there")
        names = {str(g.get("name")) for g in data.get("preset_groups") or []}
        return family.actions.preset_group in names

    # -- recording -------------------------------------------------------------------------

    async def _fail(self, family: Family, step: str, kind: str, message: str,
                    status: int | None = None, *, case: str | None = None) -> None:
        rows = json.dumps([{"number": r.number, "cells": dict(r.cells)} for r in family.rows])

        def write() -> None:
            self.ledger.set_step(family.family_id, step, State.FAILED, http_status=status,
                                 error_class=kind, error_message=message, case_name=case,
                                 run_id=self.run_id)
            self.ledger.update_family(family.family_id, rows=rows)

        await self.ledger.durably(write)
        self.summary.failed += 1
        self._maybe_stop()

    def _unknown(self, fid: str, step: str, message: str, exc: ApiError | None = None,
                 *, count: bool = False) -> None:
        self.ledger.set_step(fid, step, State.UNKNOWN, error_class=exc.kind if exc else "Unknown",
                             error_message=message, http_status=exc.status if exc else None,
                             run_id=self.run_id)
        if count:
            self.summary.unknown += 1
            self._maybe_stop()

    def _maybe_stop(self) -> None:
        limit = self.options.max_failures
        if limit is not None and self.summary.failed + self.summary.unknown >= limit:
            self._halt("max-failures", f"stopped after {limit} failed families (--max-failures)")


def _first(group: BaseExceptionGroup[ApiError]) -> ApiError:
    """The first error of a group raised by a task group."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, ApiError)
    return exc


async def run_manifest(
    manifest: Manifest,
    *,
    client: Client,
    ledger: Ledger,
    options: RunOptions | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Run every family of *manifest*; resume from *ledger*. See the module docstring."""
    runner = Runner(manifest, client=client, ledger=ledger, options=options or RunOptions(),
                    progress=progress or SilentProgress())
    return await runner.run()
