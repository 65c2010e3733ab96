"""The run engine: validate, plan, then run every family's step chain on a bounded pool.

Each family is a chain ``create`` → ``assign`` → ``preset_group`` → ``set_status`` (only the
steps its columns ask for). Every decision about a family is the planner's (``plan``); every
state change goes through the ledger's named transitions; expected failures (4xx, retries
exhausted, ambiguous creates) are recorded and the run moves on, and only bugs propagate.
A create whose outcome is unknown is reconciled by looking the case up, never blindly re-sent.

The action steps on an existing case (the runner's methods): assign participants, add a
preset group, set the status. Each is marked ``sending`` (committed) before it goes out and
recorded after.

Assigning and setting a status are idempotent. A preset group is not: after a lost answer it
is created again only when the case shows it is not there.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio

from batch.api import Client
from batch.errors import AmbiguousCreate, ApiError, AuthError, LedgerError, Undecided
from batch.ledger import Ledger, NewFamily, State
from batch.manifest import Family, Manifest, Problem
from batch.payload import resolve
from batch.run.identity import CaseIdentity
from batch.run.plan import FamilyPlan, Planner, family_steps
from batch.run.pool import run_pool
from batch.run.progress import Progress, SilentProgress
from batch.run.state import RunState, outcome_of, refused
from batch.run.summary import NAMED, RunOptions, RunSummary
from batch.run.validate import check_manifest

#: Families a run worker takes at once (it still sends one request at a time).
RUN_BATCH = 4
#: Creates marked ``sending`` together, in one commit, before they are handed out.
RESERVE_WINDOW = 64
#: Families registered in the ledger per transaction.
REGISTER_BATCH = 2000


class Runner:
    """Runs one manifest against one client and ledger. Use :func:`run_manifest`."""

    def __init__(self, manifest: Manifest, *, client: Client, ledger: Ledger,
                 options: RunOptions, progress: Progress,
                 on_checked: Callable[[list[Problem]], None] | None = None) -> None:
        self.manifest = manifest
        self.on_checked = on_checked
        self.planner = Planner(manifest, {}, look_up=options.if_exists != "create")
        self.state = RunState(client=client, resolver=resolve.for_client(client), ledger=ledger,
                              options=options, progress=progress, planner=self.planner,
                              summary=RunSummary(dry_run=options.dry_run))
        self.identity = CaseIdentity(self.state)
        self._invalid: set[str] = set()
        self._new: list[NewFamily] = []
        self._rehash: list[tuple[str, str]] = []
        self._pool_scope = anyio.CancelScope()
        self._reached = 0  # families taken by a worker before the run stopped
        self._left: int | None = None  # families --limit left for the next run

    @property
    def summary(self) -> RunSummary:
        """What the run did so far."""
        return self.state.summary

    # -- phases ----------------------------------------------------------------------------

    async def run(self) -> RunSummary:
        """Validate, plan and run; never raises for per-family failures."""
        started = time.monotonic()
        self.planner.records = self.state.ledger.snapshot()
        self.identity.load(self.planner.records)
        if self.planner.is_foreign():
            raise LedgerError(
                f"ledger {self.state.ledger.path} holds {len(self.planner.records)} families, none"
                f" of them in {self.manifest.path.name}: it belongs to another manifest. Start "
                "over with a new --ledger PATH, or delete that file."
            )
        self.summary.families = len(self.manifest)
        if self.state.options.recreate_reverted and not self.state.options.dry_run:
            self._recreate()
        await self._validate_or_halt()
        self._warn_reverted()
        if self.summary.stopped is None and self.on_checked is not None:
            self.on_checked(self.summary.problems)  # before anything is sent
        if self.summary.stopped is None and self._may_send():
            self._register()
            try:
                await self._execute()
            except* LedgerError as group:
                self.summary.stopped = "ledger"
                self.summary.stop_reason = str(group.exceptions[0])
        self._collect_stats()
        self.summary.elapsed = time.monotonic() - started
        return self.summary

    def _recreate(self) -> None:
        """Start the families whose revert is done over, as families never seen."""
        families = self.planner.recreatable()
        for family in families:
            case = self.planner.records[family.family_id].case_name
            self.state.ledger.recreate(family.family_id, family_steps(family),
                                       f"created again (--recreate-reverted); case {case} is "
                                       "in the trash")
        if families:
            self.planner.records = self.state.ledger.snapshot()
            self.identity.load(self.planner.records)

    def _warn_reverted(self) -> None:
        """One warning naming the families skipped because their cases went to the trash."""
        skipped = [fid for fid in self.manifest.family_ids if self.planner.reverted(fid)]
        if not skipped:
            return
        shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more"
                                             if len(skipped) > 10 else "")
        self.summary.problems.append(Problem(
            file=self.manifest.path.name, severity="warning", message=(
                f"skipped {len(skipped)} {'family' if len(skipped) == 1 else 'families'} whose "
                f"case was moved to the trash by revert: {shown}"),
            hint="rerun with --recreate-reverted to create them again, once their revert is "
                 "done"))

    def _may_send(self) -> bool:
        """Nothing is sent when a family is invalid, unless --skip-invalid; not even then
        when rows have no Family Id: they may belong to any family, which would be sent
        without them."""
        if not self.summary.invalid:
            return True
        if self.state.options.skip_invalid and "" in self._invalid:
            self.summary.problems.append(Problem(
                file=self.manifest.path.name, message="rows without a Family Id: nothing is "
                "sent, even with --skip-invalid, since they may belong to any family",
                hint="fill in the Family Id of every row"))
        return self.state.options.skip_invalid and "" not in self._invalid

    async def _validate_or_halt(self) -> None:
        try:
            await self._validate()
        except* AuthError as group:
            self.state.halt("auth", refused(_first(group)), note=False)
        except* ApiError as group:
            self.state.halt("server", f"the server did not answer the look-ups made before the "
                            f"first create, so nothing was sent: {_first(group).message}",
                            note=False)

    async def _validate(self) -> None:
        """Check every family whose case does not exist yet; note what to register."""
        planner = self.planner
        everything_done = all(planner.is_done(fid) for fid in self.manifest.family_ids)
        checked = await check_manifest(
            self.manifest, self.state.resolver, concurrency=self.state.options.concurrency,
            wanted=planner.needs_check, skip=planner.is_done, seen=self._note_for_register,
            # cross-family checks guard what is still to be sent; a finished resume skips them
            wide=not everything_done, progress=self.state.progress,
            requests=lambda: self.state.client.stats.requests)
        self.summary.problems = checked.problems
        self.summary.invalid = len(checked.invalid)
        self._invalid = checked.invalid

    def _note_for_register(self, seq: int, family: Family) -> None:
        """Remember new families and edited uncreated ones, so registering needs no pass."""
        found = self.planner.registration(seq, family)
        if isinstance(found, NewFamily):
            self._new.append(found)
        elif found is not None:
            self._rehash.append((family.family_id, found))

    def _register(self) -> None:
        """Add new families to the ledger as pending, in batches; refresh edited ones."""
        new = sorted((n for n in self._new if n.family_id not in self._invalid),
                     key=lambda n: n.family_id)
        for start in range(0, len(new), REGISTER_BATCH):
            self.state.ledger.add_families(new[start:start + REGISTER_BATCH])
        for family_id, row_hash in self._rehash:
            if family_id not in self._invalid:
                self.state.ledger.update_family(family_id, row_hash=row_hash)
        self._new, self._rehash = [], []

    def _plans(self, *, lead_only: bool = False) -> Iterator[tuple[Family, FamilyPlan]]:
        """Every family to work on and its plan; with *lead_only*, a family holds only the
        row its plan reads (a dry run counts plans and builds no payload)."""
        plan_counts = self.summary.plan
        taken = 0
        for family_id in self.manifest.family_ids:
            if self.planner.reverted(family_id):
                plan_counts["reverted"] = plan_counts.get("reverted", 0) + 1
                self.summary.skipped += 1
                continue
            if family_id in self._invalid or self.planner.unchanged_and_done(family_id):
                plan_counts["skip"] = plan_counts.get("skip", 0) + 1
                if family_id not in self._invalid:
                    self.summary.skipped += 1
                continue
            family = (self.manifest.lead if lead_only else self.manifest.family)(family_id)
            plan = self.planner.plan(family)
            if self.state.options.limit is not None and (plan.create or plan.steps):
                if taken >= self.state.options.limit:  # --limit: the rest wait for the next run
                    self._left = self._needing_work(family_id)
                    return
                taken += 1
            plan_counts[plan.kind] = plan_counts.get(plan.kind, 0) + 1
            yield family, plan

    def _needing_work(self, first: str) -> int:
        """Families from *first* on that the ledger does not show done (``--limit``)."""
        ids = self.manifest.family_ids
        rest = ids[ids.index(first):]
        return sum(1 for fid in rest if fid not in self._invalid
                   and not self.planner.all_succeeded(fid))

    async def _execute(self) -> None:
        state = self.state
        self.summary.ran = True
        if state.options.dry_run:
            for _ in self._plans(lead_only=True):
                pass
            return
        state.run_id = state.ledger.begin_run(
            "run", manifest_path=str(self.manifest.path), host=state.client.host,
            options={"concurrency": state.options.concurrency,
                     "max_failures": state.options.max_failures,
                     **({"settings": [dict(s) for s in state.options.settings]}
                        if state.options.settings else {})},
        )
        total = len(self.manifest) - self.summary.invalid
        done = self._done_before()
        if done:
            state.progress.note(f"resuming: {done:,} of {total:,} families done")
        state.progress.phase("running", total=total, done=done)
        self._warn_short_token(total - done)
        started = time.monotonic()
        try:
            await self._read_server_clock()
            await self._pool()
            self.summary.not_attempted = (
                self._left if self._left is not None and self.summary.stopped is None
                else total - done - self._reached)
        finally:
            self.identity.release_unsent()  # marked sending, never reached: stopped first
            state.ledger.flush()  # successes queued without waiting (Ledger.record_created)
        self._sample(time.monotonic() - started)
        self._collect_stats()
        state.ledger.end_run(state.run_id, exit_code=self.summary.exit_code,
                             counts=self.summary.as_dict())

    def _done_before(self) -> int:
        """Families a resume skips without building them (done in an earlier run)."""
        return sum(1 for fid in self.manifest.family_ids
                   if fid not in self._invalid and self.planner.unchanged_and_done(fid))

    async def _pool(self) -> None:
        state = self.state

        async def work(item: tuple[Family, FamilyPlan]) -> None:
            await self._family(*item)
            state.progress.advance(failed=self.summary.failed + self.summary.unknown,
                                   requests=state.client.stats.requests)

        async with anyio.create_task_group() as outer:
            if state.options.handle_signals:
                outer.start_soon(self._watch_signals)
            outer.start_soon(self._sample_timeline)
            with anyio.CancelScope() as self._pool_scope:
                await run_pool(self.identity.reserving(self._plans(), window=RESERVE_WINDOW),
                               work,
                               concurrency=state.options.concurrency, stop=state.stop,
                               batch=RUN_BATCH)
            outer.cancel_scope.cancel()

    def _warn_short_token(self, families: int) -> None:
        """A ready token (EMG_TOKEN) that runs out before the run is likely to end: say so
        now, not when every request is refused. Two requests a family at the current rate."""
        client = self.state.client
        expires = client.token_expires_at
        if expires is None or client.can_relogin:
            return
        left = expires - time.time()
        needed = 2 * families / max(client.limiter.rate, 1e-6)
        if left < needed:
            self.state.progress.note(
                f"warning: the token (EMG_TOKEN) expires in {max(left, 0) / 60:.0f} min and "
                f"this run may take {needed / 60:.0f} min; it stops when the token does. Set "
                "EMG_USERNAME and EMG_PASSWORD so emg-batch can log in again")

    async def _read_server_clock(self) -> None:
        """Log in now if no answer has yet told the server's time (the login the first request
        would make anyway), and say once when the two clocks differ by more than a minute:
        cases are recognised by the server's clock, but a wrong local one surprises."""
        client = self.state.client
        if client.clock.now() is None:
            try:
                await client.login()
            except AuthError as exc:
                self.state.halt("auth", refused(exc))
            except ApiError:
                pass  # the pool's first request meets the same fault, and says it
        warning = client.clock.skew_warning()
        if warning is not None:
            self.state.progress.note(warning)

    async def _watch_signals(self) -> None:
        """First Ctrl-C (or SIGTERM): take no new family. Second: cancel what is in flight."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if not self.state.stop.is_set():
                    self.state.halt("interrupted", "interrupted: finishing requests in flight "
                                    "(Ctrl-C again to cancel them)")
                else:
                    self._pool_scope.cancel()

    async def _sample_timeline(self) -> None:
        """Requests and 429s so far, every ``timeline_step`` seconds (the review's chart)."""
        started = time.monotonic()
        while True:
            await anyio.sleep(self.state.options.timeline_step)
            self._sample(time.monotonic() - started)

    def _sample(self, seconds: float) -> None:
        stats = self.state.client.stats
        self.summary.timeline.append([round(seconds, 1), stats.requests, stats.rate_limited])

    def _collect_stats(self) -> None:
        stats = self.state.client.stats
        self.summary.requests = stats.requests
        self.summary.retries = stats.retries
        self.summary.rate_limited = stats.rate_limited

    # -- one family ------------------------------------------------------------------------

    async def _family(self, family: Family, plan: FamilyPlan) -> None:
        state = self.state
        if state.stop.is_set():
            return
        self._reached += 1
        case = plan.case_name
        if plan.conflict:  # stopped by an earlier run: its case was answered for two families
            self.summary.failed += 1
            return
        if plan.create:
            case = await self.identity.create(family, plan)
            if case is None:
                return
        elif not plan.steps:
            self.summary.skipped += 1
        self._note(family, plan)
        if case is None or not plan.steps:
            return
        for step in plan.steps:
            if self.identity.holds_conflict(case):
                await self.identity.hold(family, step, case)
                return
            if not await self._action(step, family, case):
                return
        self.summary.updated += 1

    def _note(self, family: Family, plan: FamilyPlan) -> None:
        """Say in the ledger why a family is reported (or that it no longer is)."""
        if plan.changed:
            self.summary.changed += 1
            if len(self.summary.changed_families) < NAMED:
                self.summary.changed_families.append(family.family_id)
            self.state.ledger.note(family.family_id,
                                   "rows edited after the case was created; not re-created")
        elif self.planner.stale_note(family.family_id, plan):
            self.state.ledger.note(family.family_id, None)

    # -- action steps: assign, preset group, set status -------------------------------------

    async def _action(self, step: str, family: Family, case: str) -> bool:
        """Run one action step; record the outcome. False stops the family's chain."""
        state = self.state
        fid = family.family_id
        sent = False
        try:
            if step == "preset_group" and await self._preset_group_exists(family, case):
                await state.ledger.record_succeeded(fid, step, case_name=case, run_id=state.run_id)
                return True
            ids: list[int] = []
            if step == "assign":
                ids = await state.client.user_ids(list(family.actions.assign_to))
            await state.ledger.mark_sending(fid, step, run_id=state.run_id)
            sent = True
            await self._send(step, family, case, ids)
        except Undecided as exc:
            state.unknown(fid, step, f"needs review: {exc}", count=True)
            return False
        except AmbiguousCreate as exc:
            state.unknown(fid, step, exc.message, exc, count=True)
            return False
        except AuthError as exc:
            if sent:  # 401/403: the server did not act on this request
                state.ledger.record_refused(fid, step, outcome_of(exc))
            state.halt("auth", refused(exc))
            return False
        except ApiError as exc:
            if not sent and self._uncertain(fid, step):
                state.unknown(fid, step, f"could not check: {exc.message}", exc, count=True)
            else:
                await state.fail(family, step, outcome_of(exc), case=case)
            return False
        except anyio.get_cancelled_exc_class():
            if sent:
                state.unknown(fid, step, "cancelled while the request was in flight")
            raise
        await state.ledger.record_succeeded(fid, step, case_name=case, run_id=state.run_id)
        state.summary.actions[step] = state.summary.actions.get(step, 0) + 1
        return True

    async def _send(self, step: str, family: Family, case: str, ids: list[int]) -> None:
        state = self.state
        actions = family.actions
        if step == "assign":
            await state.client.assign(case, ids)
        elif step == "preset_group":
            await state.client.create_preset_group(
                case, name=actions.preset_group or "", gene_lists=list(actions.preset_gene_lists))
        elif step == "set_status":
            await state.client.set_status(case, actions.set_status or "")

    def _uncertain(self, family_id: str, step: str) -> bool:
        """Whether an earlier try of the step may have reached the server."""
        record = self.state.ledger.family(family_id)
        previous = record.steps.get(step) if record else None
        return previous is not None and previous.state in (State.SENDING, State.UNKNOWN)

    async def _preset_group_exists(self, family: Family, case: str) -> bool:
        """After a lost answer, whether the preset group is on the case (never created twice).

        A real case object lists no preset groups (``preset_groups`` is an emulator extra); the
        presets a tenant shows on a case are ``checked_presets`` (by name). A group found in either
        is there; otherwise whether it is cannot be told, and the family needs review, unless the
        user checked it is not there (``--resend-unknown preset_group``).
        """
        state = self.state
        if not self._uncertain(family.family_id, "preset_group"):
            return False
        if "preset_group" in state.options.resend_unknown:
            return False
        name = family.actions.preset_group or ""
        data = await state.client.get_case(case)
        if name in _preset_names(data):
            return True
        raise Undecided(
            f"the answer to creating preset group {name!r} on case {case} was lost, and the case "
            "does not show whether it is there; check the case in Emedgene: if the group is there, "
            "clear this family's Preset Group and Preset Gene Lists cells and rerun; if it is not, "
            "rerun with --resend-unknown preset_group")


def _first(group: BaseExceptionGroup[ApiError]) -> ApiError:
    """The first error of a group raised by a task group."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, ApiError)
    return exc


def _preset_names(data: dict[str, Any]) -> set[str]:
    """Preset (group) names a case object shows: emulator ``preset_groups``, ``checked_presets``."""
    names: set[str] = set()
    groups = data.get("preset_groups")
    if isinstance(groups, list):
        names.update(str(g.get("name")) for g in groups if isinstance(g, dict))
    checked = data.get("checked_presets")
    if isinstance(checked, dict):
        names.update(str(key) for key in checked)
    return names


async def run_manifest(
    manifest: Manifest,
    *,
    client: Client,
    ledger: Ledger,
    options: RunOptions | None = None,
    progress: Progress | None = None,
    on_checked: Callable[[list[Problem]], None] | None = None,
) -> RunSummary:
    """Run every family of *manifest*; resume from *ledger*. See the module docstring.

    *on_checked* is given the validation's problems once every family is checked, before
    anything is sent (not when the run stops during validation)."""
    runner = Runner(manifest, client=client, ledger=ledger, options=options or RunOptions(),
                    progress=progress or SilentProgress(), on_checked=on_checked)
    return await runner.run()
