"""A bounded worker pool fed from a stream: the gate before the spawn.

``concurrency`` workers read items from a memory object stream with a small buffer, so a
100,000-family manifest never becomes 100,000 parked tasks: the feeder blocks while every
worker is busy, and memory stays flat.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterable, Iterator
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
    batch: int = 1,
) -> None:
    """Call ``work(item)`` for every item with at most *concurrency* calls in flight.

    When *stop* is set, no new item is taken; calls in flight finish. Exceptions from *work*
    are bugs: they cancel the pool and propagate. With *batch* > 1 a worker takes that many
    items at once and works them one after another: for work that seldom waits (checks whose
    look-ups are cached), the hand-off between tasks would otherwise cost more than the work.
    """
    if concurrency < 1:
        raise ValueError(f"'concurrency' must be >= 1, got {concurrency}")
    if batch < 1:
        raise ValueError(f"'batch' must be >= 1, got {batch}")
    send, receive = anyio.create_memory_object_stream[tuple[T, ...]](max_buffer_size=concurrency)
    async with anyio.create_task_group() as tg:
        async with receive:
            for _ in range(concurrency):
                tg.start_soon(_worker, receive.clone(), work, stop)
        async with send:
            for chunk in _chunks(items, batch):
                if stop is not None and stop.is_set():
                    break
                await send.send(chunk)


def _chunks(items: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    iterator = iter(items)
    while chunk := tuple(itertools.islice(iterator, size)):
        yield chunk


async def _worker(
    chunks: ObjectReceiveStream[tuple[T, ...]],
    work: Callable[[T], Awaitable[None]],
    stop: anyio.Event | None,
) -> None:
    async with chunks:
        async for chunk in chunks:
            for item in chunk:
                if stop is not None and stop.is_set():
                    break
                await work(item)
