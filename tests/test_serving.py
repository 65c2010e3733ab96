"""The guarded server on loopback: slow headers (slowloris), idle keep-alive connections, slow
and oversize bodies, the connection limit; on a bare application and on the sandbox."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from batch.sandbox import SandboxConfig, run_sandbox
from batch.sandbox import app as sandbox_server
from batch.serving import Limits, Served, serve

# idle_timeout is long on purpose: only the header deadline may close the slow connections
QUICK = Limits(max_connections=64, header_timeout=0.5, idle_timeout=60.0, body_timeout=0.5,
               max_body=1024, linger=0.2)


@asynccontextmanager
async def echo_server(limits: Limits = QUICK, *, hold: asyncio.Event | None = None,
                      ) -> AsyncIterator[Served]:
    """An application that answers the length of the body (after *hold*, when given)."""

    async def echo(request: web.Request) -> web.Response:
        if hold is not None:
            await hold.wait()
        return web.json_response({"length": len(await request.read())})

    app = web.Application(client_max_size=limits.max_body)
    app.router.add_route("*", "/", echo)
    async with serve(app, limits=limits) as served:
        yield served


def partial_headers(port: int, n: int) -> list[socket.socket]:
    """*n* connections that each send half a request line and headers, then nothing."""
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        socks.append(sock)
    return socks


def closed_within(socks: list[socket.socket], timeout: float) -> int:
    """How many of *socks* the server closed within *timeout* seconds (each then closed)."""
    deadline = time.monotonic() + timeout
    closed = 0
    for sock in socks:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            closed += sock.recv(1024) == b""
        except ConnectionResetError:
            closed += 1
        except TimeoutError:
            pass
        finally:
            sock.close()
    return closed


async def attack(served: Served, n: int, limits: Limits) -> tuple[int, float]:
    """Open *n* slow connections; how many were closed, and how long that took once the
    last one was open (opening 800 takes a while on a busy machine)."""
    socks = await anyio.to_thread.run_sync(partial_headers, served.port, n)
    started = time.monotonic()
    closed = await anyio.to_thread.run_sync(closed_within, socks,
                                            limits.header_timeout + 3.0)
    return closed, time.monotonic() - started


async def get(url: str, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(url + "/", **kw) as resp:
        return resp.status, await resp.text()


async def test_partial_headers_are_closed_after_the_header_timeout() -> None:
    async with echo_server() as served:
        socks = await anyio.to_thread.run_sync(partial_headers, served.port, 40)
        await anyio.sleep(QUICK.header_timeout / 2)
        assert served.stats.open == 40  # within the limit and not yet due
        assert served.stats.header_timeouts == 0
        closed = await anyio.to_thread.run_sync(closed_within, socks, 3.0)
        assert closed == 40 and served.stats.header_timeouts == 40
        assert served.stats.open == 0


@pytest.mark.slow
async def test_many_partial_headers_never_hold_more_than_the_limit() -> None:
    async with echo_server() as served:
        closed, elapsed = await attack(served, 800, QUICK)
        assert closed == 800 and elapsed < QUICK.header_timeout + 1.5
        assert served.stats.peak <= QUICK.max_connections
        # every one closed by the guard: displaced by a newer one, or out of time
        assert served.stats.evicted + served.stats.header_timeouts == 800
        assert served.stats.evicted > 0


async def test_a_request_gets_in_while_slow_connections_fill_the_limit() -> None:
    async with echo_server() as served:
        socks = await anyio.to_thread.run_sync(partial_headers, served.port,
                                               QUICK.max_connections)
        with anyio.fail_after(QUICK.header_timeout / 2):
            while served.stats.open < QUICK.max_connections:  # noqa: ASYNC110 - accepting
                await anyio.sleep(0.005)
        assert await get(served.url, data=b"abc") == (200, '{"length": 3}')
        assert served.stats.evicted >= 1
        await anyio.to_thread.run_sync(closed_within, socks, 3.0)


async def test_when_every_connection_is_busy_a_new_one_gets_503() -> None:
    hold = asyncio.Event()
    limits = Limits(max_connections=2, header_timeout=5.0, idle_timeout=5.0)
    async with echo_server(limits, hold=hold) as served, aiohttp.ClientSession() as s:
        busy = [asyncio.create_task(get(served.url)) for _ in range(2)]
        await anyio.sleep(0.2)
        async with s.get(served.url + "/") as resp:
            assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        hold.set()
        assert [(await t)[0] for t in busy] == [200, 200]
        assert served.stats.refused == 1


async def test_an_idle_keep_alive_connection_is_closed() -> None:
    limits = Limits(header_timeout=5.0, idle_timeout=0.3)
    async with echo_server(limits) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        await asyncio.wait_for(reader.read(), 3)  # the rest, then EOF
        assert 0.2 < time.monotonic() - started < 2 and served.stats.idle_closed == 1
        writer.close()


@pytest.mark.slow
async def test_a_slow_body_gets_408() -> None:
    async with echo_server() as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 2
        assert served.stats.body_timeouts == 1
        writer.close()


async def test_an_oversize_body_gets_413_declared_or_chunked() -> None:
    async with echo_server() as served:
        assert (await get(served.url, data=b"x" * 2000))[0] == 413

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"x" * 512

        assert (await get(served.url, data=chunks()))[0] == 413
        assert (await get(served.url, data=b"x" * 1000))[0] == 200
        assert served.stats.too_large == 2


async def test_the_sandbox_closes_partial_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sandbox_server.SANDBOX_LIMITS.header_timeout <= 10
    monkeypatch.setattr(sandbox_server, "SANDBOX_LIMITS", QUICK)
    async with run_sandbox(SandboxConfig()) as sandbox:
        port = int(sandbox.url.rsplit(":", 1)[1])
        socks = await anyio.to_thread.run_sync(partial_headers, port, 300)
        closed = await anyio.to_thread.run_sync(closed_within, socks, 3.5)
        assert closed == 300
        async with aiohttp.ClientSession() as s, s.get(sandbox.url + "/_sandbox/stats") as r:
            assert r.status == 200


async def test_a_screened_request_is_answered_before_its_body_and_closed() -> None:
    def screen(request: web.Request) -> web.StreamResponse | None:
        return None if request.path == "/" else web.json_response({"m": "no"}, status=404)

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"length": len(await request.read())})

    app = web.Application(client_max_size=QUICK.max_body)
    app.router.add_route("*", "/{tail:.*}", ok)
    async with serve(app, limits=QUICK, screen=screen) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"POST /elsewhere HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), 5)  # the answer, then EOF
        assert answer.startswith(b"HTTP/1.1 404") and time.monotonic() - started < 0.4
        assert served.stats.screened == 1 and served.stats.body_timeouts == 0
        writer.close()
        assert (await get(served.url, data=b"abc"))[0] == 200  # a body that passes: read


@pytest.mark.slow
async def test_one_peer_address_holds_at_most_its_share() -> None:
    limits = Limits(max_connections=64, header_timeout=2.0, idle_timeout=60.0, max_per_peer=8)
    async with echo_server(limits) as served:
        socks = []
        for _ in range(40):
            sock = socket.create_connection(("127.0.0.1", served.port),
                                            source_address=("127.0.0.2", 0))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            socks.append(sock)
        with anyio.fail_after(2):
            while served.stats.peer_limited < 32:  # noqa: ASYNC110 - accepting
                await anyio.sleep(0.01)
        assert served.stats.open <= 8  # its own oldest made room for each new one
        assert (await get(served.url, data=b"abc")) == (200, '{"length": 3}')
        await anyio.to_thread.run_sync(closed_within, socks, 3.0)
