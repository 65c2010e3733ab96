"""The webhook listener under a flood of forged and duplicate events, sent at full speed.

``emg-batch listen`` runs as users run it (its own process, uvloop), in front of a loopback
fake API in another process that counts reads per case and how many are in flight at once
(each read takes ``--read-ms``). The flood mixes forged posts (the old ``POST /``, a guessed
token, a wrong signature) with valid, signed events (some sent as text/plain, which is read
all the same), most of them duplicates; every body is padded to ~50 KB. The flood comes from
one address, so it uses at most the 32 connections the listener gives one peer.

Targets: the ledger stays under 50 MB, at most one read per case is in flight, and a valid
event sent right after the flood is answered within 1 s.

Run: .venv/bin/python tests/benchmarks/bench_listen.py [--events 10000] [--concurrency 32]
     [--cases 100] [--dates 5] [--read-ms 50]
Prints a table and writes tests/benchmarks/results/bench_listen.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from batch.serving import serve  # noqa: E402
from tests.benchmarks.common import print_table, write_json  # noqa: E402
from tests.listen_fake import FakeApi  # noqa: E402

TOKEN = "bench-token-" + "t" * 32
SECRET = "bench-secret-" + "s" * 32
PADDING = "x" * 50_000
KINDS = ("old_path", "wrong_token", "bad_signature", "valid_text_plain",
         "valid", "valid", "valid", "valid")
LEDGER_LIMIT = 50 * 1024 * 1024


# -- the fake API, in its own process --------------------------------------------------------


async def serve_fake(read_ms: float) -> None:
    """Serve the fake API with a stats route; print its URL; run until killed."""
    fake = FakeApi(delay=read_ms / 1000)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"reads": sum(fake.reads.values()),
                                  "cases_read": len(fake.reads), "peak": fake.peak})

    app = fake.app()
    app.router.add_get("/_fake/stats", stats)
    async with serve(app) as served:
        print(served.url, flush=True)
        await asyncio.Event().wait()


def start_fake(read_ms: float) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, __file__, "--serve-fake", "--read-ms", str(read_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def fake_stats(url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(url + "/_fake/stats", timeout=10) as resp:
        return dict(json.loads(resp.read()))


# -- the listener, in its own process --------------------------------------------------------


class ListenerProcess:
    """``emg-batch listen`` on a free port; stderr is collected in a thread."""

    def __init__(self, api_url: str, ledger: Path, workers: int) -> None:
        env = {**os.environ, "EMG_HOST": api_url, "EMG_USERNAME": "u", "EMG_PASSWORD": "p",
               "EMG_WEBHOOK_TOKEN": TOKEN, "EMG_WEBHOOK_SECRET": SECRET}
        env.pop("EMG_TOKEN", None)
        cmd = [sys.executable, "-m", "batch", "listen", "--port", "0", "--ledger", str(ledger),
               "--concurrency", str(workers)]
        self.proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, cwd=REPO)
        self.lines: list[str] = []
        self._bound = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._bound.wait(30):
            self.proc.kill()
            raise SystemExit("the listener did not start: " + "".join(self.lines))
        first = next(line for line in self.lines if line.startswith("listening"))
        self.base = first.split(" at ", 1)[1].split()[0]

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if line.startswith("listening"):
                self._bound.set()

    def stop(self) -> str:
        """SIGINT, then the closing summary line."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        time.sleep(0.2)
        return next((line.strip() for line in self.lines if line.startswith("stopped:")), "")


# -- the flood -------------------------------------------------------------------------------


def event(case: str, date: str) -> dict[str, Any]:
    return {"event": "case_status_changed", "case_name": case, "status": "finalized",
            "previous_status": "delivered", "status_change_date": date,
            "organization": "bench", "padding": PADDING}


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def request_for(n: int, base: str, cases: int, dates: int) -> tuple[str, bytes, dict[str, str]]:
    """The *n*-th request of the flood: URL, body, headers."""
    kind = KINDS[n % len(KINDS)]
    body = orjson.dumps(event(f"EMG1{n % cases:08d}", f"D{(n // cases) % dates}"))
    headers = {"Content-Type": "application/json", "X-Emg-Signature": sign(body)}
    url = base + "/hooks/" + TOKEN
    if kind == "old_path":
        url = base + "/"
    elif kind == "wrong_token":
        url = base + "/hooks/" + "g" * len(TOKEN)
    elif kind == "bad_signature":
        headers["X-Emg-Signature"] = "sha256=" + "0" * 64
    elif kind == "valid_text_plain":
        headers["Content-Type"] = "text/plain"
    return url, body, headers


async def flood(base: str, *, events: int, concurrency: int, cases: int,
                dates: int) -> tuple[Counter[int], float]:
    """Send *events* requests with *concurrency* connections; answers by status, seconds."""
    statuses: Counter[int] = Counter()
    numbers = iter(range(events))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for n in numbers:
                url, body, headers = request_for(n, base, cases, dates)
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    statuses[resp.status] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return statuses, time.perf_counter() - started


async def one_valid(base: str, case: str) -> tuple[int, float]:
    """A valid event for a new case: its answer and how long that took (s)."""
    body = orjson.dumps(event(case, "after"))
    headers = {"Content-Type": "application/json", "X-Emg-Signature": sign(body)}
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(base + "/hooks/" + TOKEN, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status, time.perf_counter() - started


def ledger_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")
               if not p.name.endswith(".lock"))


def unhandled(path: Path, case: str | None = None) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        sql = "SELECT COUNT(*) FROM events WHERE handled_at IS NULL AND failed_at IS NULL"
        if case is None:
            return int(conn.execute(sql).fetchone()[0])
        return int(conn.execute(sql + " AND case_name = ?", (case,)).fetchone()[0])


def wait_until(check: Any, timeout: float = 120.0) -> float:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            return float("inf")
        time.sleep(0.01)
    return time.perf_counter() - started


# -- the run ---------------------------------------------------------------------------------


def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    fake, api_url = start_fake(args.read_ms)
    ledger = folder / "events.sqlite"
    listener = ListenerProcess(api_url, ledger, args.workers)
    try:
        statuses, seconds = asyncio.run(flood(listener.base, events=args.events,
                                              concurrency=args.concurrency, cases=args.cases,
                                              dates=args.dates))
        size = ledger_bytes(ledger)
        status, latency = asyncio.run(one_valid(listener.base, "EMG199999999"))
        handled_after = wait_until(lambda: unhandled(ledger, "EMG199999999") == 0)
        drained = wait_until(lambda: unhandled(ledger) == 0)
        status_idle, latency_idle = asyncio.run(one_valid(listener.base, "EMG199999998"))
        api = fake_stats(api_url)
    finally:
        summary = listener.stop()
        fake.kill()
        fake.wait()
    valid = [n for n in range(args.events) if KINDS[n % len(KINDS)].startswith("valid")]
    distinct = {request_for(n, "", args.cases, args.dates)[1] for n in valid}
    return {
        "events": args.events, "forged": args.events - len(valid), "valid": len(valid),
        "distinct": len(distinct), "seconds": round(seconds, 2),
        "events_per_s": round(args.events / seconds), "answers": dict(sorted(statuses.items())),
        "ledger_mb": round(size / 2**20, 2), "api_reads": api["reads"],
        "cases_read": api["cases_read"], "max_reads_in_flight_per_case": api["peak"],
        "after_status": status, "after_latency_ms": round(latency * 1000, 1),
        "after_handled_s": round(handled_after, 2), "drained_s": round(drained, 2),
        "idle_status": status_idle, "idle_latency_ms": round(latency_idle * 1000, 1),
        "listener_summary": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32,
                        help="connections the flood uses")
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--dates", type=int, default=5, help="distinct events per case")
    parser.add_argument("--read-ms", type=float, default=50.0, help="each API read's latency")
    parser.add_argument("--workers", type=int, default=8, help="the listener's --concurrency")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        asyncio.run(serve_fake(args.read_ms))
        return
    with tempfile.TemporaryDirectory() as tmp:
        row = measure(args, Path(tmp))
    print_table([row], ["events", "forged", "valid", "distinct", "seconds", "events_per_s",
                        "ledger_mb", "api_reads", "cases_read",
                        "max_reads_in_flight_per_case", "after_latency_ms", "after_handled_s",
                        "drained_s", "idle_latency_ms"],
                title="Listener flood: forged and duplicate events at full speed")
    print(f"answers by status: {row['answers']}\n{row['listener_summary']}")
    targets = {"ledger under 50 MB": row["ledger_mb"] * 2**20 < LEDGER_LIMIT,
               "at most one read per case in flight": row["max_reads_in_flight_per_case"] <= 1,
               "a valid event answered within 1 s after": row["after_status"] == 200
               and row["after_latency_ms"] < 1000}
    row["targets"] = targets
    write_json("bench_listen", row)
    missed = [name for name, ok in targets.items() if not ok]
    if missed:
        print("missed: " + ", ".join(missed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
