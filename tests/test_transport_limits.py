"""Deadlines and size limits against real loopback servers that trickle, flood or lie: every
attempt ends within its deadline, every body is read within its limit."""

from __future__ import annotations

import asyncio
import gzip
import os
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web

from batch.api.http import MB
from batch.api.http import BodyLimits as Limits
from batch.errors import (
    AmbiguousCreate,
    BodyTooLarge,
    PermanentError,
    RequestTimeout,
    RetriesExhausted,
    UsageError,
)
from batch.pull import pull_case_reports
from tests.transport_server import LOGIN, client, serve, token_answer

REPO = Path(__file__).resolve().parent.parent
HIT = b'{"name":"EMG100000001","status":"finalized","patients":{"proband":{"name":"x"}}},'


def files(root: Path) -> list[Path]:
    """Every file under *root*, ``.part`` files included."""
    return [p for p in root.rglob("*") if p.is_file()]


class Flood:
    """A body of *size* bytes written in chunks; counts what was actually sent."""

    def __init__(self, size: int, *, status: int = 200, declare: bool = False) -> None:
        self.size = size
        self.status = status
        self.declare = declare
        self.sent = 0

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if request.path == LOGIN:
            return token_answer()
        resp = web.StreamResponse(status=self.status,
                                  headers={"Content-Type": "application/json"})
        if self.declare:
            resp.content_length = self.size
        await resp.prepare(request)
        chunk = HIT * (65536 // len(HIT))
        try:
            await resp.write(b'{"hits":[')
            while self.sent < self.size:
                await resp.write(chunk)
                self.sent += len(chunk)
            await resp.write(b"{}]}")
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading: what it was spared is the point
        return resp


async def trickle(request: web.Request) -> web.StreamResponse:
    """Headers at once, then one byte a second, for ever."""
    if request.path == LOGIN:
        return token_answer()
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        for _ in range(600):
            await resp.write(b" ")
            await asyncio.sleep(1.0)
    except (ConnectionError, RuntimeError):
        pass
    return resp


async def _header_trickler() -> tuple[asyncio.Server, str]:
    """A raw server that answers the login, then sends the answer's headers a byte a second."""
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                if LOGIN.encode() in head.split(b"\r\n")[0]:
                    body = b'{"access_token":"tok-abcdefgh"}'
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                    await writer.drain()
                    continue
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 600:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(1.0)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(talk, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.slow
async def test_a_body_trickling_a_byte_a_second_stops_at_the_deadline() -> None:
    async with serve(trickle) as fake, client(fake.url, timeout=1.5) as c:
        started = time.monotonic()
        with pytest.raises(RetriesExhausted) as caught:
            await c.get_case("EMG1")
        elapsed = time.monotonic() - started
    assert isinstance(caught.value.last, RequestTimeout)
    assert 1.4 <= elapsed < 4.0


@pytest.mark.slow
async def test_headers_trickling_a_byte_a_second_stop_at_the_deadline() -> None:
    server, url = await _header_trickler()
    try:
        async with client(url, timeout=1.5) as c:
            await c.login()
            started = time.monotonic()
            with pytest.raises(RetriesExhausted):
                await c.get_case("EMG1")
            assert time.monotonic() - started < 4.0
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.slow
async def test_a_trickled_create_is_ambiguous_and_sent_once() -> None:
    async with serve(trickle) as fake, client(fake.url, timeout=1.5, attempts=4) as c:
        started = time.monotonic()
        with pytest.raises(AmbiguousCreate):
            await c.create_case({"caseType": "Exome"})
        assert time.monotonic() - started < 4.0
    assert fake.count("POST", "/api/cases/v2/cases?dry_run=false") == 1


async def test_a_declared_oversize_answer_is_refused_before_reading() -> None:
    flood = Flood(200 * MB, declare=True)
    async with serve(flood) as fake, client(fake.url, max_body_mb=4) as c:
        with pytest.raises(BodyTooLarge) as caught:
            await c.get_case("EMG1")
    assert "GET /api/test/EMG1/" in str(caught.value) and "4 MB limit" in str(caught.value)
    assert "EMG_MAX_BODY_MB" in str(caught.value)
    assert flood.sent < 50 * MB


async def test_a_huge_error_body_is_read_to_a_few_kb() -> None:
    flood = Flood(300 * MB, status=400)
    async with serve(flood) as fake, client(fake.url) as c:
        with pytest.raises(PermanentError) as caught:
            await c.get_case("EMG1")
    assert caught.value.status == 400
    assert len(str(caught.value)) <= 500
    assert flood.sent < 100 * MB  # the rest of the 300 MB was never asked for


_RSS_PROBE = """
import asyncio, resource, sys
from batch.api import Client, Credentials, RetryPolicy
from batch.errors import BodyTooLarge

async def main():
    async with Client(sys.argv[1], credentials=Credentials(token="tok-abcdefgh"),
                      retry=RetryPolicy.for_testing(attempts=1),
                      max_body_mb=float(sys.argv[2])) as c:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            hits = [h async for h in c.list_cases(status=["finalized"])]
            print("read", len(hits))
        except BodyTooLarge as exc:
            print("refused", exc)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print("grew_kb", after - before)

asyncio.run(main())
"""


async def _rss_probe(url: str, cap_mb: int) -> tuple[str, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _RSS_PROBE, url, str(cap_mb), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    grew = int(text.rsplit("grew_kb", 1)[1].split()[0])
    return text, grew


async def test_a_150_mb_listing_with_an_8_mb_limit_keeps_memory_bounded() -> None:
    flood = Flood(150 * MB)
    async with serve(flood) as fake:
        text, grew_kb = await _rss_probe(fake.url, 8)
    assert "refused" in text and "8 MB limit" in text, text
    assert grew_kb < 40 * 1024  # the limit plus buffers, not the 150 MB
    assert flood.sent < 100 * MB


@pytest.mark.slow
async def test_a_compressed_flood_is_bounded_after_decompression() -> None:
    bomb = gzip.compress(b'{"hits":[' + b" " * (200 * MB) + b"]}", compresslevel=9)

    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer()
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip",
                                                "Content-Type": "application/json"})

    async with serve(handler) as fake:
        text, grew_kb = await _rss_probe(fake.url, 8)
    assert len(bomb) < 1 * MB
    assert "refused" in text, text
    assert grew_kb < 40 * 1024


async def test_a_report_over_its_limit_leaves_no_file(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == LOGIN:
            return token_answer()
        if request.path.startswith("/api/test/v2/"):
            return web.Response(body=b"%PDF" + b"x" * (3 * MB))
        return web.json_response({"name": "EMG1", "status": "finalized",
                                  "reports": [{"type": "pdf", "id": 7}]})

    async with serve(handler) as fake, client(fake.url, max_report_mb=1) as c:
        result = await pull_case_reports(c, "EMG1", out=tmp_path)
    assert result.error is not None and "1 MB limit" in result.error
    assert "EMG_MAX_REPORT_MB" in result.error
    assert files(tmp_path) == []


@pytest.mark.slow
async def test_a_large_report_arriving_steadily_may_outlast_the_timeout(tmp_path: Path) -> None:
    size = 20 * 100_000

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == LOGIN:
            return token_answer()
        if not request.path.startswith("/api/test/v2/"):
            return web.json_response({"name": "EMG1", "status": "finalized",
                                      "reports": [{"type": "pdf", "id": 7}]})
        resp = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        await resp.prepare(request)
        for _ in range(20):  # 2 MB over about 2 s: 1 MB/s, well above the floor
            await resp.write(b"x" * (size // 20))
            await asyncio.sleep(0.1)
        return resp

    async with serve(handler) as fake, client(fake.url, timeout=1.0) as c:
        started = time.monotonic()
        result = await pull_case_reports(c, "EMG1", out=tmp_path)
        elapsed = time.monotonic() - started
    assert result.error is None and result.downloaded == 1
    assert result.files[0].stat().st_size == size
    assert elapsed > 1.0  # it did outlast the timeout


@pytest.mark.slow
async def test_a_trickled_report_stops_near_the_timeout(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/api/test/v2/"):
            return await trickle(request)
        if request.path == LOGIN:
            return token_answer()
        return web.json_response({"name": "EMG1", "status": "finalized",
                                  "reports": [{"type": "pdf", "id": 7}]})

    async with serve(handler) as fake, client(fake.url, timeout=1.5) as c:
        started = time.monotonic()
        result = await pull_case_reports(c, "EMG1", out=tmp_path)
        assert time.monotonic() - started < 4.0
    assert result.error is not None and result.transient
    assert files(tmp_path) == []


def test_limits_come_from_the_environment_unless_given() -> None:
    env = {"EMG_MAX_BODY_MB": "0.5", "EMG_MAX_REPORT_MB": " 10 "}
    assert Limits.choose(env=env) == Limits(body=MB // 2, report=10 * MB)
    assert Limits.choose(body_mb=2, env=env).body == 2 * MB
    assert Limits.choose(env={}) == Limits()
    for bad in ("abc", "0", "-1", "nan", "inf"):
        with pytest.raises(UsageError, match="EMG_MAX_BODY_MB must be a positive number"):
            Limits.choose(env={"EMG_MAX_BODY_MB": bad})
