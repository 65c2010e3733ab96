"""Webhook delivery: one JSON POST per status change, in order, retried with backoff.

Delivery never delays an API answer: events go into a queue that one task drains.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from batch.sandbox.state import StatusChange

ATTEMPTS = 4
FIRST_BACKOFF = 0.2
TIMEOUT = aiohttp.ClientTimeout(total=5)


class Notifier:
    """Posts status-change events to one URL, in the order they happened."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._queue: asyncio.Queue[StatusChange] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def send(self, changes: list[StatusChange]) -> None:
        """Queue *changes* for delivery (fire and forget)."""
        for change in changes:
            self._queue.put_nowait(change)
        if changes and self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            while True:
                change = await self._queue.get()
                try:
                    await self._post(session, change)
                finally:
                    self._queue.task_done()

    async def _post(self, session: aiohttp.ClientSession, change: StatusChange) -> None:
        delay = FIRST_BACKOFF
        for _ in range(ATTEMPTS):
            # A receiver that is down or failing must not break the sandbox: retry, then drop.
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with session.post(self.url, json=change.event()) as resp:
                    if resp.status < 300:
                        return
            await asyncio.sleep(delay)
            delay *= 2

    async def close(self, *, grace: float = 2.0) -> None:
        """Give queued deliveries *grace* seconds, then stop."""
        if self._worker is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None
