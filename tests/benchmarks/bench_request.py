"""Benchmark: the client's own cost per request, against a bare aiohttp loop.

The same sample look-up (``GET /api/sample/?query=...``), ``--requests`` times from 8 workers, to
one sandbox in its own process: once through ``batch.api.Client`` (limiter with ``rate=100000``
so it never waits, token, retries, bounded reads, stats; everything a request of ``run`` goes
through), once with a bare ``aiohttp.ClientSession``. Rounds alternate the two; reported per
round: requests per second and client CPU microseconds per request, and the ratio of requests
per second (target >= 0.8). ``bench_run.py --part overhead`` measures whole runs instead,
where per-family work (validation, payloads, the ledger) is counted too.

Run: ``.venv/bin/python tests/benchmarks/bench_request.py [--requests 4000] [--rounds 5]``.
Prints a table and writes ``tests/benchmarks/results/bench_request.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from common import DEFAULT_PASSWORD, DEFAULT_USER, LOGIN_PATH, Sandbox, print_table, write_json

from batch.api import Client, Credentials

CONCURRENCY = 8
QUERY = "/api/sample/"


def cpu_seconds() -> float:
    """User plus system CPU of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def timed(requests: int, one: Callable[[int], Awaitable[Any]]) -> tuple[float, float]:
    """Seconds and CPU seconds for *requests* calls of *one* from the workers."""
    left = list(range(requests))

    async def worker() -> None:
        while left:
            await one(left.pop())

    started, cpu = time.perf_counter(), cpu_seconds()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started, cpu_seconds() - cpu


async def through_client(url: str, requests: int) -> tuple[float, float]:
    """The look-ups through ``Client``."""
    credentials = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
    async with Client(url, credentials=credentials, rate=100_000.0,
                      concurrency=CONCURRENCY) as client:
        await client.login()
        return await timed(requests, lambda i: client.find_samples(f"BENCH{i}"))


async def bare(url: str, requests: int) -> tuple[float, float]:
    """The look-ups with a bare session."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        login = {"username": DEFAULT_USER, "password": DEFAULT_PASSWORD}
        async with session.post(url + LOGIN_PATH, json=login) as resp:
            headers = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}

        async def one(i: int) -> None:
            params = {"query": f"BENCH{i}", "sampleType": "fastq", "exact_match": "true"}
            async with session.get(url + QUERY, params=params, headers=headers) as answer:
                await answer.json()

        return await timed(requests, one)


def main() -> int:
    """Alternate the two in rounds; print per-round figures and the median ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with Sandbox() as server:
        for number in range(1, args.rounds + 1):
            row: dict[str, Any] = {"round": number}
            for name, run in (("bare", bare), ("client", through_client)):
                seconds, cpu = asyncio.run(run(server.url, args.requests))
                row[f"{name}_req_per_s"] = args.requests / seconds
                row[f"{name}_cpu_us"] = cpu / args.requests * 1e6
            row["ratio"] = row["client_req_per_s"] / row["bare_req_per_s"]
            rows.append(row)
    ratio = statistics.median(r["ratio"] for r in rows)
    print_table(rows, ["round", "bare_req_per_s", "client_req_per_s", "bare_cpu_us",
                       "client_cpu_us", "ratio"],
                title=f"One look-up, {args.requests} times from {CONCURRENCY} workers")
    print(f"requests per second, Client / bare loop, median of {args.rounds} rounds: "
          f"{ratio:.3f} (target >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'})")
    write_json("bench_request", {"requests": args.requests, "rounds": rows, "ratio": ratio})
    return 0


if __name__ == "__main__":
    sys.exit(main())
