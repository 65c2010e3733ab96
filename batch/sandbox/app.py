"""The aiohttp application: the route table, and one middleware that observes every request,
injects faults and checks tokens."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from batch.sandbox.auth import authenticate
from batch.sandbox.config import DEFAULT_CONFIG, SandboxConfig
from batch.sandbox.faults import inject
from batch.sandbox.fixture import load_fixture
from batch.sandbox.observe import route_key
from batch.sandbox.openapi import ROUTES_KEY
from batch.sandbox.responses import message, read_json
from batch.sandbox.routes import public_paths, served
from batch.sandbox.runtime import DROP, RUNTIME, USER, Runtime, runtime
from batch.sandbox.state import SandboxState

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
