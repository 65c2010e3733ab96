"""Shared helpers of the benchmarks: a sandbox in its own process, manifests, payloads, tables.

The sandbox always runs in a separate process so that the client being measured and the server
each have a core of their own. Child commands run under :func:`run_measured`, which reports wall
time, CPU seconds and peak RSS of that child alone (GNU ``time``, else ``/proc`` polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RESULTS = HERE / "results"
if str(REPO) not in sys.path:  # the manifest generator lives in tests/, beside the suite
    sys.path.insert(0, str(REPO))

from batch.manifest import read_manifest  # noqa: E402
from batch.payload import build_payload  # noqa: E402
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, demo_fixture_path  # noqa: E402
from tests.manifests import write_manifest  # noqa: E402

__all__ = [
    "CREATE_PATH",
    "CREATE_ROUTE",
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "LOGIN_PATH",
    "RESULTS",
    "Measured",
    "Sandbox",
    "StaticResolver",
    "build_payloads",
    "cli_env",
    "emg_batch",
    "login_token",
    "make_manifest",
    "pinned",
    "print_table",
    "run_measured",
    "split_cpus",
    "timer",
    "write_json",
]

CREATE_ROUTE = "POST /api/cases/v2/cases"
LOGIN_PATH = "/api/auth/v2/api_login/"
CREATE_PATH = "/api/cases/v2/cases/"
_SERVE = "from batch.cli.sandbox import sandbox_command; sandbox_command()"


# -- the sandbox process -------------------------------------------------------------------------


class Sandbox:
    """``emg-batch sandbox`` in a child process on a free loopback port; use as a context."""

    def __init__(self, *, rate_limit: float | None = None, latency_ms: float = 0.0,
                 fixture: Path | None = None, cpus: set[int] | None = None,
                 rate_limit_headers: bool = False) -> None:
        self.rate_limit = rate_limit
        self.rate_limit_headers = rate_limit_headers
        self.latency_ms = latency_ms
        self.fixture = fixture or demo_fixture_path()
        self.cpus = cpus
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Sandbox:
        cmd = [sys.executable, "-c", _SERVE, "--bind", "127.0.0.1", "--port", "0",
               "--fixture", str(self.fixture), "--latency-ms", str(self.latency_ms)]
        if self.rate_limit is not None:
            cmd += ["--rate-limit", str(self.rate_limit)]
        if self.rate_limit_headers:
            cmd += ["--rate-limit-headers"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO,
                                      preexec_fn=pinned(self.cpus))
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()  # "Emedgene sandbox at http://127.0.0.1:PORT ..."
        urls = [w for w in line.split() if w.startswith("http://127.0.0.1:")]
        if not urls:
            self.close()
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        self.url = urls[0]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after 10 s)."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self._proc is not None
        return self._proc.pid

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def get(self, path: str) -> Any:
        """GET a ``/_sandbox`` endpoint and decode its JSON."""
        with urllib.request.urlopen(self.url + path, timeout=30) as resp:
            return json.loads(resp.read())

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST JSON to a ``/_sandbox`` endpoint."""
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        """Totals from ``GET /_sandbox/stats``: requests, 429s, 503s, creates (201) and routes."""
        every: dict[str, dict[str, int]] = self.get("/_sandbox/stats")["requests"]
        # the benchmark's own look-ins (/_sandbox/...) are not the client's traffic
        routes = {k: v for k, v in every.items() if " /_sandbox" not in k}
        total = sum(sum(by.values()) for by in routes.values())

        def status(code: str) -> int:
            return sum(int(by.get(code, 0)) for by in routes.values())

        return {"requests": total, "429": status("429"), "503": status("503"),
                "created": int(routes.get(CREATE_ROUTE, {}).get("201", 0)), "routes": routes}


# -- running a child and measuring it ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    """One child process: exit code, wall seconds, CPU seconds, peak RSS (MB) and its stdout."""

    code: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str


GNU_TIME = Path("/usr/bin/time")


def split_cpus() -> tuple[set[int], set[int]] | tuple[None, None]:
    """One CPU for the client and another for the server, when this process may use two.

    Pinned, the two processes never queue for the same core, which takes one source of noise
    out of comparisons between runs; (None, None) when fewer than two CPUs are available.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return ({cpus[0]}, {cpus[1]}) if len(cpus) >= 2 else (None, None)


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child to *cpus* (None: no pinning)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def run_measured(cmd: Sequence[str], *, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, timeout: float = 3600.0,
                 cpus: set[int] | None = None) -> Measured:
    """Run *cmd* to the end, killed after *timeout* s; measure that child alone.

    Peak RSS comes from GNU ``time`` when present: ``os.wait4`` would not do, because Linux
    carries the parent's high-water mark across fork and exec into the child's ``ru_maxrss``,
    so a big benchmark process would inflate every figure. Without GNU ``time``, ``VmHWM`` of
    ``/proc/<pid>/status`` is polled (reset by exec) and CPU comes from ``os.wait4``.
    """
    base = Path(tempfile.gettempdir()) / f"bench-{os.getpid()}-{time.time_ns()}"
    timing = Path(f"{base}.time")
    wrapped = list(cmd)
    if GNU_TIME.exists():
        wrapped = [str(GNU_TIME), "-f", "%M %U %S", "-o", str(timing), *wrapped]
    with open(f"{base}.out", "w+") as out, open(f"{base}.err", "w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=out, stderr=err, env=dict(env or os.environ),
                                cwd=cwd, preexec_fn=pinned(cpus))
        hwm_kb = 0
        while True:  # bounded: the child is killed when it overruns
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            hwm_kb = max(hwm_kb, _vm_hwm_kb(proc.pid))
            if time.perf_counter() - started > timeout:
                proc.kill()
            time.sleep(0.01)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    cpu = usage.ru_utime + usage.ru_stime
    if timing.exists():
        fields = timing.read_text().split()[-3:]  # GNU time may prefix a "Command exited" line
        with contextlib.suppress(ValueError, IndexError):
            hwm_kb, cpu = int(fields[0]), float(fields[1]) + float(fields[2])
    for suffix in (".out", ".err", ".time"):
        Path(f"{base}{suffix}").unlink(missing_ok=True)
    return Measured(proc.returncode, wall, cpu, hwm_kb / 1024, stdout, stderr)


def _vm_hwm_kb(pid: int) -> int:
    """Peak RSS so far of a running process (0 when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def emg_batch(*args: str) -> list[str]:
    """The ``emg-batch`` command line run by this interpreter."""
    return [sys.executable, "-m", "batch", *args]


def cli_env() -> dict[str, str]:
    """The environment for ``emg-batch`` against the sandbox's default account."""
    env = dict(os.environ)
    env.update(EMG_USERNAME=DEFAULT_USER, EMG_PASSWORD=DEFAULT_PASSWORD)
    env.pop("EMG_TOKEN", None)
    return env


# -- manifests and payloads ------------------------------------------------------------------


def make_manifest(directory: Path, families: int, *, prefix: str = "FAM",
                  fmt: str = "csv") -> Path:
    """An official batch CSV (or the same columns as Parquet) of 3-member FASTQ families."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = write_manifest(directory / f"{prefix.lower()}.csv", families, prefix=prefix)
    if fmt == "csv":
        return csv_path
    frame = pl.read_csv(csv_path, skip_rows=1, infer_schema=False)
    out = directory / f"{prefix.lower()}.parquet"
    frame.write_parquet(out)
    csv_path.unlink()
    return out


class StaticResolver:
    """Answers look-ups from the demo fixture without a request (storage 1 is s3)."""

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """The fixture's storage record."""
        fixture = json.loads(demo_fixture_path().read_text())
        return dict(fixture["storages"][str(storage_id)])

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """Not needed: the generated manifests name plain file paths."""
        raise AssertionError("no directory look-ups expected")

    async def find_sample(self, name: str) -> Mapping[str, Any] | None:
        """Not needed: the generated manifests create new samples."""
        return None


def build_payloads(manifest: Path) -> list[dict[str, Any]]:
    """The create bodies ``emg-batch`` sends for *manifest* (same builder, fixture look-ups)."""
    parsed = read_manifest(manifest)
    resolver = StaticResolver()

    async def build() -> list[dict[str, Any]]:
        return [await build_payload(f, resolver) for f in parsed.families()]

    return asyncio.run(build())


def login_token(url: str) -> str:
    """Log in to the sandbox with urllib and answer the bearer token."""
    body = json.dumps({"username": DEFAULT_USER, "password": DEFAULT_PASSWORD}).encode()
    req = urllib.request.Request(url + LOGIN_PATH, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        data = json.loads(resp.read())
    return str(data["access_token"])


# -- output ----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return "" if value is None else str(value)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                *, title: str | None = None) -> None:
    """Print *rows* as an aligned text table of *columns*."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    if title:
        print(f"\n{title}")
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    sys.stdout.flush()


def write_json(name: str, data: Any) -> Path:
    """Write *data* to ``tests/benchmarks/results/<name>.json``; answer the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    """Seconds spent in the block, in ``box[0]`` afterwards."""
    box = [0.0]
    started = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - started
