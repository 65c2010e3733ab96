"""The sandbox application: the route table, the middleware (observing every request, faults,
bearer tokens), the test-only ``/_sandbox`` endpoints, and running it.

Bearer-token checks (``Authorization`` or ``Emgauthorization``): 401 unknown; an expired token
answers 403 or 401, as configured (real clients meet both).

Test-only endpoints under ``/_sandbox`` (no auth): look inside, change faults, force statuses.

The route table: every emulated route, its handler and the tag it is documented under.

The aiohttp application: the route table, and one middleware that observes every request,
injects faults and checks tokens.

Running a sandbox: as an async context manager, or in a background thread for sync code.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

from aiohttp import web

from batch.sandbox import cases, extras, lookups, render
from batch.sandbox.config import DEFAULT_CONFIG, SandboxConfig
from batch.sandbox.fixture import load_fixture
from batch.sandbox.openapi import ROUTES_KEY, SPEC_PATH, Route, spec
from batch.sandbox.responses import INVALID, json_answer, message, read_json
from batch.sandbox.runtime import DROP, RUNTIME, USER, Runtime, inject, route_key, runtime
from batch.sandbox.state import ALL_STATUSES, SandboxState, User
from batch.serving import Limits, serve


def _bearer(value: str, *, prefix_required: bool) -> str | None:
    parts = value.strip().split(None, 1)
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1].strip() or None
    if not prefix_required and len(parts) == 1:
        return parts[0]
    return None


def request_token(request: web.Request) -> str | None:
    """The token a request carries, or None when it carries none that is well formed."""
    value = request.headers.get("Authorization", "")
    if value.strip():
        return _bearer(value, prefix_required=True)
    value = request.headers.get("Emgauthorization", "")
    if value.strip():
        return _bearer(value, prefix_required=False)
    return None


def authenticate(request: web.Request, state: SandboxState, ttl: float, *,
                 expired_status: int = 403) -> User | web.Response:
    """The user behind the request, or the 401/403 answer to send instead."""
    token = request_token(request)
    if token is None:
        return message(401, "Missing or malformed authorization header")
    entry = state.tokens.get(token)
    if entry is None:
        return message(401, "Invalid token")
    user, issued = entry
    if time.time() - issued > ttl:
        return message(expired_status, "Token expired")
    return user


async def sandbox_cases(request: web.Request) -> web.Response:
    """``GET /_sandbox/cases``: every case with its create body."""
    rt = runtime(request)
    rt.tick()
    hits = [render.sandbox_case(c) for c in rt.state.cases.values()]
    return json_answer({"hits": hits, "total": len(hits)})


async def stats(request: web.Request) -> web.Response:
    """``GET /_sandbox/stats``: answers per route and status code."""
    rt = runtime(request)
    if rt.recorder is not None:
        rt.recorder.flush()  # a test reading stats may read the record file next
    return json_answer(rt.stats.as_json())


async def faults(request: web.Request) -> web.Response:
    """``POST /_sandbox/faults``: change fault settings; answers the settings in force."""
    rt = runtime(request)
    body = await read_json(request)
    if body is INVALID or not isinstance(body, dict | None):
        return message(400, "Request body must be a JSON object")
    try:
        rt.faults.update(body or {})
    except ValueError as problem:
        return message(400, str(problem))
    return json_answer(rt.faults.as_json())


async def advance(request: web.Request) -> web.Response:
    """``POST /_sandbox/advance`` ``{"case", "status"}``: force a status, rules aside."""
    rt = runtime(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        return message(400, "Request body must be a JSON object")
    name, status = body.get("case"), body.get("status")
    if status not in ALL_STATUSES:
        return message(400, f"Unknown status: {status}")
    case = rt.case(name) if isinstance(name, str) else None
    if case is None:
        return message(404, f"Test {name} not found")
    change = rt.state.set_status(case, status)
    if change is not None and rt.notifier is not None:
        rt.notifier.send([change])
    return json_answer(render.case_summary(case))


# Tags: Cases and Reports are the real documentation's; the others are inferred.
ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/auth/v2/api_login", cases.login, "Auth", public=True),
    Route("POST", "/api/auth/api_login", cases.legacy_login, "Auth", public=True),
    Route("POST", "/api/cases/v2/cases", cases.create_case, "Cases"),
    Route("GET", "/api/test", cases.list_cases, "Cases"),
    Route("GET", "/api/test/{case}", cases.get_case, "Cases"),
    Route("PUT", "/api/test/{case}", cases.set_status, "Cases"),
    Route("GET", "/api/test/{case}/info", cases.case_info, "Cases"),
    Route("POST", "/api/test/{case}/preset_group", extras.preset_group, "Presets"),
    Route("GET", "/api/test/{case}/export", extras.export, "Candidates"),
    Route("GET", "/api/test/v2/{case}/reports", extras.report_listing, "Reports"),
    Route("GET", "/api/test/v2/{case}/reports/{type}/{id}", extras.report, "Reports"),
    Route("GET", "/api/candidates/{case}", extras.candidates, "Candidates"),
    Route("POST", "/api/participant/{case}", extras.assign, "Participants"),
    Route("GET", "/api/user/org_users", extras.org_users, "Users"),
    Route("GET", "/api/organization/users", extras.organization_users, "Users"),
    Route("GET", "/api/sample", lookups.samples, "Samples"),
    Route("GET", "/api/phenotype", lookups.phenotypes, "Phenotypes"),
    Route("GET", "/api/storage/{id}", lookups.storage, "Storage"),
    Route("GET", "/api/storage/{id}/fs/list", lookups.fs_list, "Storage"),
    Route("GET", SPEC_PATH, spec, "Docs", public=True),
    Route("GET", "/_sandbox/cases", sandbox_cases, "Sandbox"),
    Route("GET", "/_sandbox/stats", stats, "Sandbox"),
    Route("POST", "/_sandbox/faults", faults, "Sandbox"),
    Route("POST", "/_sandbox/advance", advance, "Sandbox"),
)
#: Served only when ``SandboxConfig.report_listing`` is on.
REPORT_LISTING = "/api/test/v2/{case}/reports"


def served(config: SandboxConfig) -> list[Route]:
    """The routes a sandbox with *config* serves."""
    return [r for r in ROUTES if config.report_listing or r.path != REPORT_LISTING]


def public_paths(routes: list[Route]) -> frozenset[str]:
    """Paths answered without a token (the logins and the API document)."""
    return frozenset(r.path for r in routes if r.public)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TICK_MAX = 0.5
PUBLIC = web.AppKey("sandbox_public", frozenset)


def _drop(request: web.Request) -> None:
    """Close the connection at once: the client sees it reset, with no answer."""
    transport = request.transport
    if transport is not None:
        transport.abort()


@web.middleware
async def sandbox_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record and count every request; on ``/api``: faults, then the bearer-token check."""
    rt = runtime(request)
    if rt.recorder is not None:
        rt.recorder.write(request, await read_json(request))
    key = route_key(request)
    answer = await _answer(request, handler, rt)
    if request.get(DROP):
        rt.stats.add(key, "dropped")
        _drop(request)
        raise asyncio.CancelledError  # nothing may be written on the aborted connection
    rt.stats.add(key, str(answer.status))
    return answer


async def _answer(request: web.Request, handler: Handler, rt: Runtime) -> web.StreamResponse:
    try:
        return await _guarded(request, handler, rt)
    except web.HTTPException as exc:  # unknown route or method: keep the JSON error convention
        return message(exc.status, exc.reason)


async def _guarded(request: web.Request, handler: Handler, rt: Runtime) -> web.StreamResponse:
    path = request.path
    if not path.startswith("/api/"):
        return await handler(request)
    answer = await _api(request, handler, rt)
    rt.faults.stamp(answer)
    return answer


async def _api(request: web.Request, handler: Handler, rt: Runtime) -> web.StreamResponse:
    path = request.path
    public = path.rstrip("/") in request.app[PUBLIC]
    if request.can_read_body:
        # The body is in before the injected latency, as on a slow server that has the
        # request and is busy: a client that gives up meanwhile does not undo the work.
        await request.read()
    fault = await inject(rt.faults, rt.rng, login=public)
    if fault is not None:
        return fault
    if not public:
        user = authenticate(request, rt.state, rt.faults.token_ttl,
                            expired_status=rt.config.expired_status)
        if isinstance(user, web.Response):
            return user
        request[USER] = user
    return await handler(request)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Open the record file and run the status clock while the app serves."""
    rt = app[RUNTIME]
    if rt.recorder is not None:
        rt.recorder.open()
    ticker = None
    step = rt.config.advance_after
    if step is not None and step > 0:
        ticker = asyncio.create_task(_tick_forever(rt, min(step / 2, TICK_MAX)))
    yield
    if ticker is not None:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
    if rt.notifier is not None:
        await rt.notifier.close()
    if rt.recorder is not None:
        rt.recorder.close()


async def _tick_forever(rt: Runtime, every: float) -> None:
    # Status changes happen (and webhooks go out) even when nobody reads the cases.
    while True:
        await asyncio.sleep(every)
        rt.tick()


def create_app(
    config: SandboxConfig = DEFAULT_CONFIG, *, state: SandboxState | None = None
) -> web.Application:
    """Build the sandbox app; pass the *state* of an earlier app to emulate a restart.

    A given *state* keeps the fixture it was built with; otherwise ``config.fixture`` is loaded.
    """
    if state is None:
        fixture = load_fixture(config.fixture) if config.fixture is not None else None
        state = SandboxState(fixture, seed=config.seed)
    app = web.Application(middlewares=[sandbox_middleware], client_max_size=64 * 1024 * 1024)
    app[RUNTIME] = Runtime(config, state)
    routes = served(config)
    app[ROUTES_KEY] = routes
    app[PUBLIC] = public_paths(routes)
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
        app.router.add_route(route.method, route.path + "/", route.handler)
    app.cleanup_ctx.append(_lifecycle)
    return app


START_TIMEOUT = 30.0
#: Bounds of the sandbox's server: many client connections (benchmarks run 512), slow
#: headers and bodies cut off, bodies as large as the application accepts (64 MiB).
SANDBOX_LIMITS = Limits(max_connections=2048, header_timeout=10.0, idle_timeout=60.0,
                        body_timeout=60.0, max_body=64 * 1024 * 1024)


@dataclass(frozen=True, slots=True)
class RunningSandbox:
    """A sandbox that is serving: its base URL (no trailing slash), state and configuration."""

    url: str
    state: SandboxState
    config: SandboxConfig


@asynccontextmanager
async def run_sandbox(
    config: SandboxConfig = DEFAULT_CONFIG,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state: SandboxState | None = None,
) -> AsyncIterator[RunningSandbox]:
    """Serve a sandbox on *host*:*port* (0: a free port) for the duration of the block."""
    app = create_app(config, state=state)
    async with serve(app, host=host, port=port, limits=SANDBOX_LIMITS) as served:
        yield RunningSandbox(url=served.url, state=app[RUNTIME].state, config=config)


class SandboxThread:
    """A sandbox served from a background thread with its own event loop (for sync code)."""

    def __init__(
        self,
        config: SandboxConfig = DEFAULT_CONFIG,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state: SandboxState | None = None,
    ) -> None:
        self.config = config
        self._host, self._port, self._initial_state = host, port, state
        self._running: RunningSandbox | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return self._require().url

    @property
    def state(self) -> SandboxState:
        """The sandbox's in-memory data."""
        return self._require().state

    def _require(self) -> RunningSandbox:
        if self._running is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self._running

    def start(self) -> SandboxThread:
        """Start serving; return once the port is bound (raise if it could not start)."""
        if self._thread is not None:
            raise RuntimeError("the sandbox thread was already started")
        self._thread = threading.Thread(target=self._main, name="emg-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError("the sandbox did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the sandbox could not start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(START_TIMEOUT)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); a thread has nowhere else to raise
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with run_sandbox(self.config, host=self._host, port=self._port,
                               state=self._initial_state) as running:
            self._running = running
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> SandboxThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
