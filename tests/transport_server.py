"""Loopback fake servers for the transport's attack tests: real HTTP (aiohttp ``web``), every
request recorded, one handler per test.

``serve(handler)`` runs a server on 127.0.0.1 (or another loopback address such as
127.0.0.2, the "other host" of redirect tests) and yields a :class:`Fake` with its URL and
the requests it received. ``login`` answers the v2 login; ``jwt`` makes unsigned JWTs.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from batch.api import Client, Credentials, RetryPolicy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOGIN = "/api/auth/v2/api_login/"
PASSWORD = "pa55-word-SECRET"
USER = Credentials(username="u@example.com", password=PASSWORD)
TLS = Path(__file__).resolve().parent / "data" / "tls"


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Fake:
    """A running fake server: its base URL and what it received."""

    url: str
    seen: list[Seen] = field(default_factory=list)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests received (of *method* to *path* when given)."""
        return sum(1 for s in self.seen
                   if (method is None or s.method == method) and (path is None or s.path == path))


@asynccontextmanager
async def serve(handler: Handler, *, host: str = "127.0.0.1",
                tls: bool = False) -> AsyncIterator[Fake]:
    """Run *handler* for every route on *host* (a loopback address), on a free port."""
    fake = Fake(url="")

    async def record(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        fake.seen.append(Seen(request.method, request.path_qs, dict(request.headers), body))
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = None
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(TLS / "cert.pem", TLS / "key.pem")
    site = web.TCPSite(runner, host, 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"{'https' if tls else 'http'}://{host}:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


def token_answer(token: str = "tok-opaque-123456") -> web.Response:
    """The v2 login's answer."""
    return web.json_response({"access_token": token, "token_type": "bearer"})


def jwt(*, exp: float, iat: float | None = None, sub: str = "u@example.com") -> str:
    """An unsigned JWT (the client reads ``exp`` only and never checks a signature)."""
    def part(data: dict[str, object]) -> str:
        raw = json.dumps(data).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    claims: dict[str, object] = {"sub": sub, "exp": exp}
    if iat is not None:
        claims["iat"] = iat
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def claims_of(authorization: str) -> dict[str, object]:
    """The claims of the JWT in an ``Authorization: Bearer`` header."""
    payload = authorization.split(" ", 1)[1].split(".")[1]
    loaded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return loaded


def client(url: str, *, credentials: Credentials = USER, attempts: int = 1,
           **options: object) -> Client:
    """A client for a fake server: no waiting between retries, *attempts* tries."""
    options.setdefault("rate", 1000.0)
    return Client(url, credentials=credentials,
                  retry=RetryPolicy.for_testing(attempts=attempts), **options)  # type: ignore[arg-type]


def now() -> float:
    """Wall-clock seconds, as a JWT's ``exp`` counts them."""
    return time.time()
