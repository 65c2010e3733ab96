"""Benchmark: the client's rate limiting against a sandbox with a 50 rps token bucket.

The sandbox runs in its own process (so client and server do not share an event loop or a
CPU). 1,000 sample look-ups go through ``Client`` from many concurrent tasks, once with a
fixed ``--rate`` equal to the limit and once with the adaptive limiter. Targets:

* fixed rate: elapsed <= 1.05 x the ideal (requests / limit) and no 429;
* adaptive: achieved rate >= 85 % of the limit and 429s under 3 % of requests.

Run: ``python tests/benchmarks/bench_rate.py [--tasks 16 32 64] [--limit 50]``.
Prints a table and writes ``tests/benchmarks/results/bench_rate.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from batch.api import Client, Credentials, RetryPolicy
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER

RESULTS = Path(__file__).parent / "results" / "bench_rate.json"
SANDBOX = (
    "from batch.cli.sandbox import sandbox_command; sandbox_command(prog_name='emg-batch sandbox')"
)


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def sandbox_process(limit: float) -> Iterator[str]:
    """Serve a sandbox with a *limit* rps bucket in a child process; yield its URL."""
    port = free_port()
    cmd = [sys.executable, "-c", SANDBOX, "--port", str(port), "--rate-limit", str(limit)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(url, proc))
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll the sandbox until it answers."""
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"sandbox exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/_sandbox/stats") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError("sandbox did not start")


async def sandbox_429s(url: str) -> int:
    """429 answers the sandbox has given so far, all routes."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_sandbox/stats") as resp:
        stats = await resp.json()
    return sum(int(by.get("429", 0)) for by in stats["requests"].values())


async def one_run(url: str, *, rate: float | None, requests: int, tasks: int) -> dict[str, Any]:
    """Send *requests* look-ups from *tasks* workers; measure elapsed time and 429s."""
    before = await sandbox_429s(url)
    creds = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    async with Client(
        url, credentials=creds, rate=rate, concurrency=tasks, retry=RetryPolicy()
    ) as client:
        await client.login()

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                await client.find_samples(f"BENCH{i:05d}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(tasks)))
        elapsed = time.perf_counter() - start
    sent = client.stats.requests - 1  # the login
    return {
        "mode": f"fixed {rate:g}" if rate is not None else "adaptive",
        "requests": requests,
        "tasks": tasks,
        "elapsed_s": round(elapsed, 3),
        "achieved_rps": round(requests / elapsed, 2),
        "sent": sent,
        "rate_limited": client.stats.rate_limited,
        "share_429": round(client.stats.rate_limited / max(sent, 1), 4),
        "server_429": await sandbox_429s(url) - before,
        "retries": client.stats.retries,
        "final_rate": round(client.limiter.rate, 2),
    }


def judge(row: dict[str, Any], limit: float) -> None:
    """Add the targets and whether they were met."""
    ideal = row["requests"] / limit
    row["ideal_s"] = ideal
    row["ratio_to_ideal"] = round(row["elapsed_s"] / ideal, 3)
    row["utilisation"] = round(row["achieved_rps"] / limit, 3)
    if row["mode"].startswith("fixed"):
        row["target"] = "elapsed <= 1.05 x ideal, no 429"
        row["met"] = row["ratio_to_ideal"] <= 1.05 and row["rate_limited"] == 0
    else:
        row["target"] = ">= 85% of limit, 429s < 3%"
        row["met"] = row["utilisation"] >= 0.85 and row["share_429"] < 0.03


def main() -> None:
    """Run both modes and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--limit", type=float, default=50.0)
    parser.add_argument("--tasks", type=int, nargs="+", default=[32])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        for tasks in args.tasks:
            for rate in (args.limit, None):
                # A fresh sandbox per run: each starts with a full bucket, as a real run would.
                with sandbox_process(args.limit) as url:
                    run = one_run(url, rate=rate, requests=args.requests, tasks=tasks)
                    row = asyncio.run(run)
                judge(row, args.limit)
                rows.append(row)
    cols = [
        "mode",
        "tasks",
        "elapsed_s",
        "ideal_s",
        "ratio_to_ideal",
        "achieved_rps",
        "utilisation",
        "sent",
        "rate_limited",
        "share_429",
        "server_429",
        "final_rate",
        "met",
    ]
    print(" | ".join(f"{c:>12}" for c in cols))
    for row in rows:
        print(" | ".join(f"{row[c]!s:>12}" for c in cols))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"limit": args.limit, "runs": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
