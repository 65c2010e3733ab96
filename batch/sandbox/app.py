"""The aiohttp application: the route table, and one middleware that observes every request,
injects faults and checks tokens."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from batch.sandbox import api, introspect
from batch.sandbox.auth import authenticate
from batch.sandbox.config import DEFAULT_CONFIG, SandboxConfig
from batch.sandbox.faults import inject
from batch.sandbox.fixture import load_fixture
from batch.sandbox.observe import route_key
from batch.sandbox.responses import message, read_json
from batch.sandbox.runtime import DROP, RUNTIME, USER, Runtime, runtime
from batch.sandbox.state import SandboxState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOGIN_PATHS = frozenset({"/api/auth/v2/api_login", "/api/auth/api_login"})
TICK_MAX = 0.5

# (method, path without trailing slash, handler); each is served with and without the slash.
ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/api/auth/v2/api_login", api.login),
    ("POST", "/api/auth/api_login", api.legacy_login),
    ("POST", "/api/cases/v2/cases", api.create_case),
    ("GET", "/api/test", api.list_cases),
    ("GET", "/api/test/{case}", api.get_case),
    ("PUT", "/api/test/{case}", api.set_status),
    ("GET", "/api/test/{case}/info", api.case_info),
    ("POST", "/api/test/{case}/preset_group", api.preset_group),
    ("GET", "/api/test/{case}/export", api.export),
    ("GET", "/api/test/v2/{case}/reports/{type}/{id}", api.report),
    ("GET", "/api/candidates/{case}", api.candidates),
    ("POST", "/api/participant/{case}", api.assign),
    ("GET", "/api/user/org_users", api.org_users),
    ("GET", "/api/sample", api.samples),
    ("GET", "/api/storage/{id}", api.storage),
    ("GET", "/api/storage/{id}/fs/list", api.fs_list),
    ("GET", "/_sandbox/cases", introspect.cases),
    ("GET", "/_sandbox/stats", introspect.stats),
    ("POST", "/_sandbox/faults", introspect.faults),
    ("POST", "/_sandbox/advance", introspect.advance),
]


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
    login = path.rstrip("/") in LOGIN_PATHS
    if request.can_read_body:
        # The body is in before the injected latency, as on a slow server that has the
        # request and is busy: a client that gives up meanwhile does not undo the work.
        await request.read()
    fault = await inject(rt.faults, rt.rng, login=login)
    if fault is not None:
        return fault
    if not login:
        user = authenticate(request, rt.state, rt.faults.token_ttl)
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
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, path + "/", handler)
    app.cleanup_ctx.append(_lifecycle)
    return app
