"""The listener and its work list.

The listener's work list: one job per case, bounded, with backoff for jobs that failed.

An event is only a hint that a case changed, so the work is per case: a job re-reads the case
once for every event recorded before the read began. Events that arrive while a job waits or
backs off join it; events that arrive while its read is in flight make it run once more
afterwards (the case may have changed after the read). So at most one re-read per case is in
flight, and the number of jobs (cases waiting, running or backing off) is what is bounded.

The listener: case-status changes in (webhooks, the case listing, or both), durable records
and report pulls out, within fixed bounds.

A request passes ``hooks`` (the token, decided before the body is read; the signature) and
only then touches the ledger: each event is recorded once (by its dedupe key, only the fields
used) *before* it is answered ``200``, so an acknowledged event is never lost; duplicates get
``200`` too, so the sender stops retrying. An authenticated body in which no case is found
(``hooks``) is kept in the ledger, answered ``200``, and the listing is read at once to catch
up (``follow``); with ``follow.interval`` the listing is also read on a clock, with or
without a webhook port. When the work list is full, a new case
gets ``503`` with ``Retry-After`` and nothing is recorded. An event is only a hint: workers
re-read the case (``GET /api/test/{case}/``) and act on what the server says now, one read per
case at a time. A case whose handling fails (refused, missing, a failed download) is recorded
as failed with its reason, retried with backoff a bounded number of times, then left failed;
it never stops the listener. Only a refusal of the listener's own credentials does, once,
with exit 3. Events not settled when the listener stopped are taken up when it starts again.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from batch.api import Client, is_loopback
from batch.api.auth import LOGIN_PATH
from batch.errors import ApiError, AuthError, LedgerError, OutputError, UsageError, truncate
from batch.ledger import Ledger
from batch.outputs.files import writing
from batch.pull.follow import Busy, Follower, FollowOptions, FollowStats
from batch.pull.hooks import MAX_BODY, HookAuth, HookEvent, Refusal, Unread, dedupe_key, hook_app
from batch.pull.reports import FINALIZED, Discovery, pull_case_reports
from batch.serving import GuardStats, Limits, serve

__all__ = ["FollowOptions", "Inbox", "Job", "ListenerLimits", "ListenerStats", "dedupe_key",
           "listen"]


@dataclass(slots=True, eq=False)
class Job:
    """The pending work on one case."""

    case: str
    #: The newest event id of the case known to the job.
    upto: int
    #: Failed attempts so far.
    attempts: int = 0
    #: ``upto`` when the current read began: what a success or failure settles.
    taken: int = 0
    running: bool = False


class Inbox:
    """Jobs waiting for a worker, running, or backing off; at most *capacity* of them."""

    def __init__(self, *, capacity: int) -> None:
        self.capacity = capacity
        self._jobs: dict[str, Job] = {}
        self._ready: deque[Job] = deque()
        self._later: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._wake = anyio.Event()

    def __len__(self) -> int:
        return len(self._jobs)

    def accepts(self, case: str) -> bool:
        """Whether an event for *case* has a place: its job exists, or there is room."""
        return case in self._jobs or len(self._jobs) < self.capacity

    def put(self, case: str, event_id: int, *, attempts: int = 0) -> None:
        """An event of *case* was recorded: start its job or join the one that exists."""
        job = self._jobs.get(case)
        if job is not None:
            job.upto = max(job.upto, event_id)
            return
        job = self._jobs[case] = Job(case=case, upto=event_id, attempts=attempts)
        self._queue(job)

    async def take(self) -> Job:
        """The next job that is due; it runs until :meth:`done`, :meth:`retry` or
        :meth:`give_up`."""
        while True:
            self._promote()
            if self._ready:
                job = self._ready.popleft()
                job.running, job.taken = True, job.upto
                return job
            if self._wake.is_set():  # every waiting worker shares one event
                self._wake = anyio.Event()
            wait = self._later[0][0] - anyio.current_time() if self._later else None
            with anyio.move_on_after(wait):
                await self._wake.wait()

    def done(self, job: Job) -> None:
        """The read succeeded; run again only for events that arrived during it."""
        job.running = False
        job.attempts = 0
        self._again_or_forget(job)

    def retry(self, job: Job, delay: float) -> None:
        """The read failed; try again after *delay* seconds (later events join it)."""
        job.running = False
        heapq.heappush(self._later, (anyio.current_time() + delay, next(self._order), job))
        self._wake.set()

    def give_up(self, job: Job) -> None:
        """The read failed for the last time; events that arrived during it start afresh."""
        job.running = False
        job.attempts = 0
        self._again_or_forget(job)

    def _again_or_forget(self, job: Job) -> None:
        if job.upto > job.taken:
            self._queue(job)
        else:
            del self._jobs[job.case]

    def _queue(self, job: Job) -> None:
        self._ready.append(job)
        self._wake.set()

    def _promote(self) -> None:
        now = anyio.current_time()
        while self._later and self._later[0][0] <= now:
            self._ready.append(heapq.heappop(self._later)[2])


log = logging.getLogger(__name__)

WORKERS = 4
#: The listener's server: a sender needs few connections; a status event is small; one peer
#: address may hold a quarter of the connections.
SERVER_LIMITS = Limits(max_connections=128, header_timeout=10.0, idle_timeout=30.0,
                       body_timeout=10.0, max_body=MAX_BODY, max_per_peer=32)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerLimits:
    """The listener's bounds: cases in the work list, attempts per case and their backoff."""

    max_cases: int = 10_000
    attempts: int = 5
    first_backoff: float = 5.0
    max_backoff: float = 600.0
    #: Seconds a sender is asked to wait when the work list is full.
    retry_after: int = 5
    server: Limits = SERVER_LIMITS

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after *attempts* failures (x4 each time, capped)."""
        return float(min(self.max_backoff, self.first_backoff * 4 ** max(0, attempts - 1)))


@dataclass(slots=True)
class ListenerStats:
    """Counters of one listener (for the closing summary, logs and tests)."""

    received: int = 0
    duplicates: int = 0
    busy: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    handled: int = 0
    finalized: int = 0
    reports_downloaded: int = 0
    failures: int = 0
    gave_up: int = 0
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=100))
    server: GuardStats | None = None
    #: The ledger's events by state when the listener started (see ``Ledger.event_counts``).
    at_start: dict[str, int] = field(default_factory=dict)
    #: Failed events given fresh attempts at start (``--retry-failed``).
    retried: int = 0
    #: Authenticated webhook bodies in which no case was found (kept in the ledger).
    unread: int = 0
    #: Reading the case listing (on a clock, or to catch up).
    follow: FollowStats = field(default_factory=FollowStats)


class _CaseFailed(Exception):
    """Handling one case failed; *message* is what the ledger records."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class _Setup:
    ledger: Ledger
    client: Client
    out: Path | None
    report_types: tuple[str, ...]
    stats: ListenerStats
    limits: ListenerLimits
    inbox: Inbox
    #: Shared by every report pull: remembers what the tenant does not serve.
    discovery: Discovery
    #: Set when the listener's own credentials are refused: it stops with this error.
    stop: list[AuthError] = field(default_factory=list)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    #: Reads the case listing (on a clock, and to catch up).
    follower: Follower


async def listen(
    *,
    ledger: Ledger,
    client: Client,
    auth: HookAuth | None = None,
    host: str = "127.0.0.1",
    port: int | None = 0,
    follow: FollowOptions | None = None,
    on_finalized_out: Path | None = None,
    report_types: Sequence[str] = ("pdf",),
    ready: Callable[[str], None] | None = None,
    allow_remote: bool = False,
    workers: int = WORKERS,
    stats: ListenerStats | None = None,
    limits: ListenerLimits | None = None,
) -> None:
    """Receive webhooks on *host*:*port* (None: no webhooks) until cancelled, and read the
    case listing as *follow* says (by default only to catch up after a body that names no
    case; ``follow.interval``: also every so many seconds).

    ``ready(url)`` is called once the port is bound, with the whole webhook URL to give the
    sender (it carries the token: show it to the operator, never log it), or with ``""``
    when there is no port. Without *auth*, a token is generated. With *on_finalized_out*,
    the reports of every case found finalized are downloaded there (as ``pull finalized``
    does). Raises AuthError when the listener's own credentials are refused.
    """
    if not allow_remote and not is_loopback(host):
        raise UsageError(f"{host} is not a loopback address; pass --allow-remote to listen on it")
    if port is None and (follow is None or follow.interval is None):
        raise UsageError("nothing to follow: give a webhook port, a polling interval, or both")
    limits = limits or ListenerLimits()
    stats = stats or ListenerStats()
    follower = Follower(ledger, client, lambda event: _record_listed(setup, event),
                        options=follow or FollowOptions(), stats=stats.follow)
    setup = _Setup(ledger=ledger, client=client, out=on_finalized_out,
                   report_types=tuple(report_types), stats=stats, limits=limits,
                   inbox=Inbox(capacity=limits.max_cases), discovery=Discovery(client),
                   follower=follower)
    for case in ledger.open_cases():  # recorded before a stop, not settled: take them up
        setup.inbox.put(case.case, case.upto, attempts=case.attempts)
    auth = auth or HookAuth.from_env({})
    if port is None:
        await _run(setup, ready, "", workers)
        return
    app, screen = hook_app(auth, lambda event: _accept(setup, event),
                           lambda *unread: _keep(setup, *unread), refused=setup.stats.refused)
    async with serve(app, host=host, port=port, limits=limits.server, screen=screen) as served:
        setup.stats.server = served.stats
        await _run(setup, ready, served.url + auth.path, workers)


async def _run(setup: _Setup, ready: Callable[[str], None] | None, url: str,
               workers: int) -> None:
    """The workers and the follower, until cancelled or the credentials are refused."""
    with setup.scope:
        async with anyio.create_task_group() as tg:
            for _ in range(max(1, workers)):
                tg.start_soon(_worker, setup)
            tg.start_soon(_follow, setup)
            if ready is not None:
                ready(url)
            await anyio.sleep_forever()
    if setup.stop:
        raise setup.stop[0]


async def _follow(setup: _Setup) -> None:
    try:
        await setup.follower.run()
    except AuthError as err:  # the listener's own credentials: stop, once
        setup.stop.append(err)
        setup.scope.cancel()


def _keep(setup: _Setup, raw: bytes, content_type: str, header_names: list[str],
          unread: Unread) -> dict[str, bool]:
    """Keep an authenticated body that names no case, and catch up from the listing."""
    try:
        setup.ledger.keep_unread(raw, content_type=content_type, header_names=header_names,
                                 reason=unread.reason)
    except LedgerError as err:  # not kept, so not acknowledged: the sender retries
        log.error("%s", err)
        raise Refusal(503, "ledger", "cannot record the body now; retry later",
                      retry_after=setup.limits.retry_after) from None
    setup.stats.unread += 1
    if setup.stats.unread == 1:
        log.warning("a webhook body names no case (%s): kept in the ledger; catching up from "
                    "the case listing (further ones are only counted)", unread.reason)
    setup.follower.catch_up()
    return {"recorded": True, "understood": False}


def _record_listed(setup: _Setup, event: HookEvent) -> int | None:
    """Record a case the listing shows changed (Busy when the work list is full)."""
    if not setup.inbox.accepts(event.case):
        raise Busy(f"the work list is full ({setup.limits.max_cases} cases); the listing is "
                   "read again later")
    row = setup.ledger.add_event(event.key, event.case, event.fields())
    if row is not None:
        setup.inbox.put(event.case, row)
    return row


def _accept(setup: _Setup, event: HookEvent) -> dict[str, bool]:
    """Record an authenticated event (durable first: once answered, the sender forgets it)."""
    if not setup.inbox.accepts(event.case):
        setup.stats.busy += 1
        raise Refusal(503, "busy", "too many cases waiting; retry later",
                      retry_after=setup.limits.retry_after)
    try:
        row = setup.ledger.add_event(event.key, event.case, event.fields())
    except LedgerError as err:  # not recorded, so not acknowledged: the sender retries
        log.error("%s", err)
        raise Refusal(503, "ledger", "cannot record the event now; retry later",
                      retry_after=setup.limits.retry_after) from None
    setup.stats.received += 1
    if row is None:
        setup.stats.duplicates += 1
        return {"recorded": False, "duplicate": True}
    setup.inbox.put(event.case, row)
    return {"recorded": True, "duplicate": False}


async def _worker(setup: _Setup) -> None:
    while True:
        job = await setup.inbox.take()
        try:
            await _handle(setup, job.case)
        except _CaseFailed as failed:
            _record_failure(setup, job, failed.message)
            continue
        except AuthError as err:  # the listener's own credentials: stop, once
            _record_failure(setup, job, f"authentication refused: {err.message}", stop=True)
            setup.stop.append(err)
            setup.scope.cancel()
            return
        setup.stats.handled += setup.ledger.mark_events_handled(job.case, job.taken)
        setup.inbox.done(job)


def _record_failure(setup: _Setup, job: Job, message: str, *, stop: bool = False) -> None:
    """Count a failed attempt on *job*'s events; retry later, or leave them failed."""
    attempts = job.attempts + 1
    final = attempts >= setup.limits.attempts
    message = truncate(message)
    setup.ledger.record_event_failure(job.case, job.taken, attempts=attempts, error=message,
                                      final=final)
    stats = setup.stats
    stats.failures += 1
    stats.errors.append(f"{job.case}: {message}")
    if stop:
        return
    if final:
        stats.gave_up += 1
        log.warning("%s: %s (attempt %d of %d; left failed)", job.case, message, attempts,
                    setup.limits.attempts)
        setup.inbox.give_up(job)
        return
    job.attempts = attempts
    delay = setup.limits.backoff(attempts)
    log.warning("%s: %s (attempt %d of %d; next in %.0f s)", job.case, message, attempts,
                setup.limits.attempts, delay)
    setup.inbox.retry(job, delay)


async def _handle(setup: _Setup, case: str) -> None:
    """Re-read *case* and act on its true status; _CaseFailed when that fails."""
    try:
        data = await setup.client.get_case(case)
        if data.get("status") != FINALIZED:
            return
        setup.stats.finalized += 1
        if setup.out is None:
            return
        with writing(setup.out):
            result = await pull_case_reports(setup.client, case, out=setup.out,
                                             report_types=setup.report_types, case_object=data,
                                             discovery=setup.discovery)
    except AuthError as err:
        if _own_credentials(err):
            raise
        raise _CaseFailed(_explain(err)) from None
    except ApiError as err:
        raise _CaseFailed(_explain(err)) from None
    except OutputError as err:
        raise _CaseFailed(str(err)) from None
    setup.stats.reports_downloaded += result.downloaded
    if result.error is not None:
        raise _CaseFailed(result.error)
    log.info("%s finalized: %d report(s) downloaded, %d already present", case,
             result.downloaded, result.present)


def _own_credentials(err: AuthError) -> bool:
    """Whether the listener's own login or token is refused (not just this case).

    A case the server refuses even after a fresh login names the case's path; a refused
    login names the login path; a bare token that cannot be renewed names none.
    """
    return err.path is None or err.path == LOGIN_PATH


def _explain(err: ApiError) -> str:
    return f"{err.message} (HTTP {err.status})" if err.status else err.message
