"""Benchmark: what the transport's bounds (per-attempt deadline, incremental capped reads,
redirect and token checks) cost against a bare aiohttp loop on the same loopback server.

A server in its own process answers a 1 KB case object, an 8 MB case object and a 64 MB
report. Contenders, in one run and in rotating order: a bare ``aiohttp`` loop (``resp.read()``
and ``orjson.loads``; ``iter_chunked`` to a file for reports) and ``batch.api.Client``
(``get_case``, ``download_report``), at the same concurrency. Prints requests per second
(small), MB per second (large answers, reports), the client process's CPU time per unit, and
the Client/bare ratio of each, the median of ``--rounds`` rounds. On a shared machine CPU time
is the steadier figure.

Run: ``.venv/bin/python tests/benchmarks/bench_transport.py [--small 4000] [--big 40]
[--reports 8] [--rounds 3]``. To compare with another tree, put it first on ``PYTHONPATH``
(a tree whose ``download_report`` takes a path is handled).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson

import batch
from batch.api import Client, Credentials, RetryPolicy

SERVER = r"""
import sys
from aiohttp import web
SMALL = b'{"name":"EMG1","status":"finalized","notes":"' + b"x" * 1000 + b'"}'
BIG = b'{"name":"BIG","hits":[' + b'{"a":1,"b":"yyyyyyyy"},' * 349525 + b'{}]}'
REPORT = b"%PDF" + b"r" * (64 * 1048576 - 4)
async def handle(request):
    if request.path.startswith("/api/auth/"):
        return web.json_response({"access_token": "tok-bench-123456", "token_type": "bearer"})
    if request.path.startswith("/api/test/v2/"):
        return web.Response(body=REPORT, content_type="application/pdf")
    body = BIG if "BIG" in request.path else SMALL
    return web.Response(body=body, content_type="application/json")
app = web.Application()
app.router.add_route("*", "/{tail:.*}", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

Run = Callable[[str, int, int], Awaitable[float]]


async def bare_json(url: str, count: int, concurrency: int, case: str) -> float:
    headers = {"Authorization": "Bearer tok-bench-123456"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async def one() -> None:
            async with session.get(f"{url}/api/test/{case}/") as resp:
                orjson.loads(await resp.read())
        return await _pool(one, count, concurrency)


async def client_json(url: str, count: int, concurrency: int, case: str) -> float:
    async with _client(url, concurrency) as client:
        await client.login()

        async def one() -> None:
            await client.get_case(case)
        return await _pool(one, count, concurrency)


async def bare_report(url: str, count: int, concurrency: int, folder: Path) -> float:
    headers = {"Authorization": "Bearer tok-bench-123456"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async def one() -> None:
            async with session.get(f"{url}/api/test/v2/EMG1/reports/pdf/1") as resp:
                with (folder / "bare.pdf").open("wb") as out:
                    async for chunk in resp.content.iter_chunked(1 << 16):
                        out.write(chunk)
        return await _pool(one, count, concurrency)


async def client_report(url: str, count: int, concurrency: int, folder: Path) -> float:
    async with _client(url, concurrency) as client:
        await client.login()
        takes_path = "dest" in inspect.signature(client.download_report).parameters

        async def one() -> None:
            if takes_path:
                await client.download_report("EMG1", "pdf", 1, folder / "c.pdf")  # type: ignore[arg-type]
            else:
                with (folder / "c.pdf").open("wb") as out:
                    await client.download_report("EMG1", "pdf", 1, out)
        return await _pool(one, count, concurrency)


def _client(url: str, concurrency: int) -> Client:
    return Client(url, credentials=Credentials(username="u", password="p"), rate=1e6,
                  concurrency=concurrency, retry=RetryPolicy.for_testing(attempts=1))


async def _pool(one: Callable[[], Awaitable[None]], count: int, concurrency: int) -> float:
    """Seconds to run *one* *count* times, *concurrency* at a time."""
    queue = iter(range(count))

    async def worker() -> None:
        for _ in queue:
            await one()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def measure(url: str, args: argparse.Namespace,
                  folder: Path) -> dict[str, tuple[float, float]]:
    """One round: every contender once; (rate, CPU seconds per unit) by name."""
    rates: dict[str, tuple[float, float]] = {}
    small, big, rep = args.small, args.big, args.reports
    for name, run, unit in [
        ("small bare", lambda: bare_json(url, small, 16, "EMG1"), small),
        ("small client", lambda: client_json(url, small, 16, "EMG1"), small),
        ("8 MB bare", lambda: bare_json(url, big, 4, "BIG"), big * 8),
        ("8 MB client", lambda: client_json(url, big, 4, "BIG"), big * 8),
        ("64 MB report bare", lambda: bare_report(url, rep, 1, folder), rep * 64),
        ("64 MB report client", lambda: client_report(url, rep, 1, folder), rep * 64),
    ]:
        cpu = time.process_time()
        wall = await run()
        rates[name] = (unit / wall, (time.process_time() - cpu) / unit)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=4000)
    parser.add_argument("--big", type=int, default=40)
    parser.add_argument("--reports", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8797)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(args.port)])
    try:
        rounds = asyncio.run(_rounds(f"http://127.0.0.1:{args.port}", args))
    finally:
        server.terminate()
        server.wait()
    _print(rounds)


async def _rounds(url: str, args: argparse.Namespace) -> list[dict[str, tuple[float, float]]]:
    await _wait(url)
    with tempfile.TemporaryDirectory() as tmp:
        return [await measure(url, args, Path(tmp)) for _ in range(args.rounds)]


async def _wait(url: str) -> None:
    for _ in range(100):
        try:
            async with aiohttp.ClientSession() as session, session.get(url + "/x"):
                return
        except aiohttp.ClientError:
            await asyncio.sleep(0.1)
    raise SystemExit("the benchmark server did not start")


def _print(rounds: list[dict[str, tuple[float, float]]]) -> None:
    print(f"batch from {Path(batch.__file__).parent}; pid {os.getpid()}; {len(rounds)} rounds")
    for what, unit, per in (("small", "req/s", "request"), ("8 MB", "MB/s", "MB"),
                            ("64 MB report", "MB/s", "MB")):
        def med(side: str, i: int, what: str = what) -> float:
            return statistics.median(r[f"{what} {side}"][i] for r in rounds)

        ratio = statistics.median(r[f"{what} client"][0] / r[f"{what} bare"][0] for r in rounds)
        cpu = statistics.median(r[f"{what} client"][1] / r[f"{what} bare"][1] for r in rounds)
        print(f"{what:>13}: bare {med('bare', 0):8.1f} {unit}, client {med('client', 0):8.1f} "
              f"{unit} (x{ratio:.2f}); CPU per {per}: bare {med('bare', 1) * 1e6:7.0f} us, "
              f"client {med('client', 1) * 1e6:7.0f} us (x{cpu:.2f})")


if __name__ == "__main__":
    main()
