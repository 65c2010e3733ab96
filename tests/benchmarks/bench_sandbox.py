"""Creates per second the sandbox sustains, served from a separate process.

Run: python tests/benchmarks/bench_sandbox.py [--seconds 10] [--concurrency 64]
Prints a table and writes tests/benchmarks/results/bench_sandbox.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CORPUS = REPO / "tests" / "data" / "conformance" / "official-cli-36"
RESULTS = HERE / "results" / "bench_sandbox.json"
START_SERVER = "from batch.cli.sandbox import sandbox_command; sandbox_command()"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_payloads() -> list[dict[str, Any]]:
    """Real create bodies from the conformance corpus (every successful create)."""
    bodies = []
    for path in sorted(CORPUS.glob("v*.expected.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            bodies.append(json.loads(line)["payload"])
    return bodies


def start_server() -> tuple[subprocess.Popen[str], str]:
    """Start ``emg-batch sandbox`` on a free loopback port; answer the process and its URL."""
    cmd = [sys.executable, "-c", START_SERVER, "--port", "0",
           "--fixture", str(CORPUS / "fixture.json")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = next(w for w in line.split() if w.startswith("http://"))
    return proc, url


async def worker(session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                 bodies: itertools.cycle[bytes], deadline: float, latencies: list[float],
                 statuses: dict[int, int]) -> None:
    """Send creates back to back until *deadline*."""
    target = url + "/api/cases/v2/cases?dry_run=false"
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        async with session.post(target, data=next(bodies), headers=headers) as resp:
            await resp.read()
        latencies.append(time.perf_counter() - started)
        statuses[resp.status] = statuses.get(resp.status, 0) + 1


async def load(url: str, *, seconds: float, concurrency: int) -> dict[str, Any]:
    """Drive the sandbox with *concurrency* keep-alive connections for *seconds*."""
    encoded = [json.dumps(b).encode() for b in load_payloads()]
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        login = {"username": "sandbox@example.com", "password": "sandbox"}
        async with session.post(url + "/api/auth/v2/api_login/", json=login) as resp:
            token = (await resp.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        bodies = itertools.cycle(encoded)
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(session, url, headers, bodies, deadline, latencies,
                                      statuses) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    created = statuses.get(201, 0)

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "seconds": round(elapsed, 2), "concurrency": concurrency, "payloads": len(encoded),
        "requests": len(latencies), "created": created,
        "creates_per_second": round(created / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "latency_ms_p50": pct(0.50), "latency_ms_p95": pct(0.95), "latency_ms_p99": pct(0.99),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
    }


def main() -> None:
    """Run the benchmark, print a table, write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    proc, url = start_server()
    try:
        cpu_before = cpu_seconds(proc.pid)
        result = asyncio.run(load(url, seconds=args.seconds, concurrency=args.concurrency))
        server_cpu = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    # CPU per create is steadier than wall-clock throughput on a shared machine.
    per_create = server_cpu / max(1, result["requests"])
    result["server_cpu_seconds"] = round(server_cpu, 2)
    result["server_cpu_ms_per_create"] = round(per_create * 1000, 3)
    result["server_creates_per_cpu_second"] = round(1 / per_create, 1) if per_create else None
    result["load_average_after"] = os.getloadavg()[0]
    result["target_creates_per_second"] = 1500
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    width = max(map(len, result))
    print(f"{'metric':<{width}}  value")
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
