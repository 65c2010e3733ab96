"""A bounded worker pool fed from a stream: the gate before the spawn.

``concurrency`` workers read items from a memory object stream with a small buffer, so a
100,000-family manifest never becomes 100,000 parked tasks: the feeder blocks while every
worker is busy, and memory stays flat.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import anyio
from anyio.abc import ObjectReceiveStream

T = TypeVar("T")


async def run_pool(
    items: Iterable[T],
    work: Callable[[T], Awaitable[None]],
    *,
    concurrency: int,
    stop: anyio.Event | None = None,
) -> None:
    """Call ``work(item)`` for every item with at most *concurrency* calls in flight.

    When *stop* is set, no new item is taken; calls in flight finish. Exceptions from *work*
    are bugs: they cancel the pool and propagate.
    """
    if concurrency < 1:
        raise ValueError(f"'concurrency' must be >= 1, got {concurrency}")
    send, receive = anyio.create_memory_object_stream[T](max_buffer_size=concurrency)
    async with anyio.create_task_group() as tg:
        async with receive:
            for _ in range(concurrency):
                tg.start_soon(_worker, receive.clone(), work)
        async with send:
            for item in items:
                if stop is not None and stop.is_set():
                    break
                await send.send(item)


async def _worker(items: ObjectReceiveStream[T], work: Callable[[T], Awaitable[None]]) -> None:
    async with items:
        async for item in items:
            await work(item)
