"""The listener's work list: one job per case, bounded, with backoff for jobs that failed.

An event is only a hint that a case changed, so the work is per case: a job re-reads the case
once for every event recorded before the read began. Events that arrive while a job waits or
backs off join it; events that arrive while its read is in flight make it run once more
afterwards (the case may have changed after the read). So at most one re-read per case is in
flight, and the number of jobs (cases waiting, running or backing off) is what is bounded.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass

import anyio

__all__ = ["Inbox", "Job"]


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
