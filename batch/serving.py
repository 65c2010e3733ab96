"""One way to serve an aiohttp application: bounded connections, header, idle and body
deadlines, and a body cap. Used by the webhook listener and by the sandbox.

aiohttp has no deadline for a request's headers: a client that opens a connection and sends a
few bytes at a time (slowloris) holds it as long as it likes. So every connection goes through
a thin protocol wrapper that knows the connection's state:

* ``waiting``: a new connection, or a kept-alive one whose next request has begun to arrive;
  its request line and headers must be complete within ``header_timeout``;
* ``busy``: a request is in the application (the middleware marks it), no deadline here;
  the body must arrive within ``body_timeout`` (read by the middleware, at most ``max_body``);
* ``idle``: kept alive after an answer, nothing received yet; closed after ``idle_timeout``.

At ``max_connections`` a new connection takes the place of the oldest one that is waiting or
idle (a slow client is dropped, not the new one); when every connection is busy, the new one
gets ``503`` with ``Retry-After`` and is closed. One peer address may hold ``max_per_peer``
connections: over that, a new one takes the place of that peer's oldest idle connection, or
gets ``503`` (so one address cannot take every place, nor push out another's connections).

A *screen* given to :func:`serve` decides on the request line and headers alone, before any
body is read: a request it refuses is answered at once, and its connection is closed when the
body has not all arrived (an unauthenticated peer trickling a body holds nothing).

Why an aiohttp class that is not public is used: aiohttp offers no hook at the connection
level (no header deadline, no say in which connection is accepted), so the wrapper sits between
the event loop and aiohttp's protocol. It uses only public doors to reach it: the runner's
``web.Server`` is the protocol factory (``loop.create_server(server, ...)``, as aiohttp's
low-level server documentation does), and ``request.protocol`` names the connection of a
request. What it relies on from the protocol it gets back (``web_protocol.RequestHandler``, not
public) is the asyncio ``Protocol`` interface alone: ``connection_made``, ``data_received``,
``eof_received``, ``connection_lost``, ``pause_writing``, ``resume_writing``.
``tests/test_serving_aiohttp.py`` pins exactly that, so an aiohttp upgrade that changes it fails a
test, not a user.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from batch.errors import CannotListen

__all__ = ["CannotListen", "GuardStats", "Limits", "Screen", "Served", "serve"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Decides on a request's line and headers: an answer refuses it, None lets it in.
Screen = Callable[[web.Request], web.StreamResponse | None]

#: The whole answer to a connection over the limit: written raw, before any parsing.
BUSY_ANSWER = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain"
               b"\r\nContent-Length: 12\r\nConnection: close\r\n\r\nserver busy\n")
#: Pending connections the listening socket holds (aiohttp's sites use the same).
BACKLOG = 128


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The bounds of one server (seconds and bytes)."""

    max_connections: int = 256
    header_timeout: float = 10.0
    idle_timeout: float = 30.0
    body_timeout: float = 10.0
    #: A declared ``Content-Length`` above this is answered 413 before anything is read; the
    #: application's ``client_max_size`` bounds what is read of a chunked body.
    max_body: int = 1 << 20
    #: Seconds spent reading (and dropping) the rest of a body that was refused.
    linger: float = 1.0
    #: Connections one peer address may hold (None: only ``max_connections``).
    max_per_peer: int | None = None


@dataclass(slots=True)
class GuardStats:
    """What the guard did (for tests, benchmarks and logs)."""

    open: int = 0
    peak: int = 0
    refused: int = 0
    evicted: int = 0
    header_timeouts: int = 0
    idle_closed: int = 0
    body_timeouts: int = 0
    too_large: int = 0
    #: Connections refused or displaced because their peer address held its share.
    peer_limited: int = 0
    #: Requests answered on their headers alone, before any body was read.
    screened: int = 0


@dataclass(frozen=True, slots=True)
class Served:
    """A server that is running: its base URL (no trailing slash), port and guard counters."""

    url: str
    port: int
    stats: GuardStats


class _State(enum.Enum):
    WAITING = "waiting"
    BUSY = "busy"
    IDLE = "idle"


class _Watched(asyncio.Protocol):
    """One connection: aiohttp's own protocol inside, its state and deadline outside."""

    def __init__(self, guard: _Guard) -> None:
        self.guard = guard
        self.inner: Any = None  # aiohttp's RequestHandler, once admitted
        self.transport: asyncio.Transport | None = None
        self.state = _State.WAITING
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.peer = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self.guard.admit(self):
            self.transport.write(BUSY_ANSWER)
            self.transport.close()
            return
        self.inner = self.guard.make_handler()
        self.guard.by_handler[self.inner] = self
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return
        if self.state is _State.IDLE:  # the next request begins: its headers are now due
            self.guard.set_state(self, _State.WAITING)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        if self.inner is not None:
            self.guard.by_handler.pop(self.inner, None)
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Guard:
    """The connections of one server, their deadlines, and the middleware that marks them."""

    def __init__(self, limits: Limits, screen: Screen | None = None) -> None:
        self.limits = limits
        self.screen = screen
        self.stats = GuardStats()
        self.server: web.Server | None = None
        self.by_handler: dict[Any, _Watched] = {}
        self._open: set[_Watched] = set()
        self._quiet: OrderedDict[_Watched, None] = OrderedDict()  # waiting or idle, oldest first
        self._by_peer: dict[str, int] = {}

    def __call__(self) -> _Watched:
        """The protocol factory given to the event loop."""
        return _Watched(self)

    def make_handler(self) -> Any:
        assert self.server is not None
        return self.server()

    def admit(self, conn: _Watched) -> bool:
        """Take *conn* in, making room by dropping the oldest quiet connection if needed
        (of its own peer when that peer holds its share)."""
        cap = self.limits.max_per_peer
        if cap is not None and self._by_peer.get(conn.peer, 0) >= cap:
            self.stats.peer_limited += 1
            if not self._make_room(conn.peer):  # its own waiting ones have a request coming
                return False
        if len(self._open) >= self.limits.max_connections and not self._make_room(None):
            return False
        self._open.add(conn)
        self._by_peer[conn.peer] = self._by_peer.get(conn.peer, 0) + 1
        self.stats.open = len(self._open)
        self.stats.peak = max(self.stats.peak, self.stats.open)
        self.set_state(conn, _State.WAITING)
        return True

    def _make_room(self, peer: str | None) -> bool:
        """Drop a quiet connection: *peer*'s oldest idle one, or else the oldest of the peer
        that holds the most connections (many peers churning connections push out each
        other, not a sender that holds a few); False when there is none."""
        if peer is not None:
            victim = next((c for c in self._quiet
                           if c.peer == peer and c.state is _State.IDLE), None)
        else:
            by_peer = self._by_peer
            victim = max(self._quiet, key=lambda c: by_peer.get(c.peer, 0), default=None)
        if victim is None:
            self.stats.refused += 1
            return False
        self.stats.evicted += 1
        self.forget(victim)
        victim.close()
        return True

    def set_state(self, conn: _Watched, state: _State) -> None:
        """Move *conn* to *state* and give it that state's deadline.

        Two state changes per request: the timer is moved only when the new deadline comes
        before it; a timer that fires early finds the later deadline and waits again.
        """
        if conn not in self._open:
            return
        conn.state = state
        self._quiet.pop(conn, None)
        if state is _State.BUSY:
            return
        self._quiet[conn] = None
        loop = asyncio.get_running_loop()
        wait = self.limits.header_timeout if state is _State.WAITING else self.limits.idle_timeout
        conn.deadline = loop.time() + wait
        if conn.timer is not None and conn.timer.when() > conn.deadline:
            conn.timer.cancel()
            conn.timer = None
        if conn.timer is None:
            conn.timer = loop.call_at(conn.deadline, self._expire, conn)

    def _expire(self, conn: _Watched) -> None:
        conn.timer = None
        if conn not in self._open or conn.state is _State.BUSY:
            return  # busy: the next quiet state sets a new deadline
        loop = asyncio.get_running_loop()
        if loop.time() < conn.deadline:
            conn.timer = loop.call_at(conn.deadline, self._expire, conn)
            return
        if conn.state is _State.WAITING:
            self.stats.header_timeouts += 1
        else:
            self.stats.idle_closed += 1
        self.forget(conn)
        conn.close()

    def forget(self, conn: _Watched) -> None:
        """*conn* is closed or about to be: no deadline, no place in the count."""
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        self._quiet.pop(conn, None)
        if conn in self._open:
            self._open.discard(conn)
            left = self._by_peer.pop(conn.peer, 1) - 1
            if left:
                self._by_peer[conn.peer] = left
        self.stats.open = len(self._open)

    def close_all(self) -> None:
        """Cancel every deadline (the server is shutting down)."""
        for conn in list(self._open):
            self.forget(conn)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Mark the connection busy, screen the headers, read the body within its deadline,
        then handle."""
        conn = self.by_handler.get(request.protocol)
        if conn is not None:
            self.set_state(conn, _State.BUSY)
        try:
            screened = self.screen(request) if self.screen is not None else None
            if screened is not None:
                self.stats.screened += 1
                return await _answer_before_body(request, screened)
            refused = await self._read_body(request)
            return refused if refused is not None else await handler(request)
        finally:
            if conn is not None:
                self.set_state(conn, _State.IDLE)

    async def _read_body(self, request: web.Request) -> web.StreamResponse | None:
        """Read the whole body now (handlers then get it from memory); an answer if refused."""
        if request.match_info.http_exception is not None or not request.body_exists:
            return None  # no route: nothing will read it
        declared = request.content_length
        if declared is not None and declared > self.limits.max_body:
            self.stats.too_large += 1
            return _closing(413, f"request body over {self.limits.max_body} bytes")
        try:
            if request.content.is_eof():  # all here already (most bodies): no deadline needed
                await request.read()
            else:
                async with asyncio.timeout(self.limits.body_timeout):
                    await request.read()
        except TimeoutError:
            self.stats.body_timeouts += 1
            return _closing(408, "request body not received in time")
        except web.HTTPRequestEntityTooLarge:
            self.stats.too_large += 1
            return _closing(413, "request body too large")
        return None


async def _answer_before_body(request: web.Request,
                              answer: web.StreamResponse) -> web.StreamResponse:
    """Send *answer* now; close the connection unless the whole body is already here (what is
    still coming is not waited for, not even for aiohttp's lingering read)."""
    if not request.body_exists or request.content.is_eof():
        return answer
    answer.force_close()
    with contextlib.suppress(ConnectionError):  # the peer has gone already: nothing to say
        await answer.prepare(request)
        await answer.write_eof()
    if request.transport is not None:
        request.transport.close()  # after the answer's bytes: close() flushes them first
    return answer


def _closing(status: int, message: str) -> web.Response:
    resp = web.json_response({"message": message}, status=status)
    resp.force_close()
    return resp


async def _listen(guard: _Guard, host: str, port: int) -> asyncio.Server:
    """A listening socket whose connections go through the guard (the guard is the protocol
    factory; aiohttp's ``web.Server`` makes the protocol inside, as its low-level server
    documentation shows)."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.create_server(guard, host, port, backlog=BACKLOG)
    except OSError as exc:  # in use, or not an address of this machine: the user's to fix
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CannotListen(f"cannot listen on {host}:{port}: {reason.lower()} "
                           "(choose another --port, or 0 for any free one)") from exc


@asynccontextmanager
async def serve(
    app: web.Application, *, host: str = "127.0.0.1", port: int = 0, limits: Limits | None = None,
    screen: Screen | None = None,
) -> AsyncIterator[Served]:
    """Serve *app* on *host*:*port* (0: a free port) within *limits* for the block's duration.

    Binding is the caller's decision (loopback checks live with the commands). The guard's
    middleware goes first in *app*, which must not be running yet. *screen* sees each request
    before its body is read (see the module's docstring).
    """
    guard = _Guard(limits or Limits(), screen)
    app.middlewares.insert(0, guard.middleware)
    # No access log: it costs more than the handlers themselves under load.
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           keepalive_timeout=guard.limits.idle_timeout,
                           lingering_time=guard.limits.linger)
    await runner.setup()
    listener: asyncio.Server | None = None
    try:
        guard.server = runner.server
        listener = await _listen(guard, host, port)
        bound = int(listener.sockets[0].getsockname()[1])
        url_host = f"[{host}]" if ":" in host else host
        yield Served(url=f"http://{url_host}:{bound}", port=bound, stats=guard.stats)
    finally:
        guard.close_all()
        if listener is not None:
            listener.close()  # no new connection; then the runner closes the open ones
        await runner.cleanup()
