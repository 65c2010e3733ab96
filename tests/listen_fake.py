"""A loopback fake of the few API routes the listener uses (login, the case object, the case
listing), which counts reads per case and how many of them are in flight at once; cases can be
refused (403), missing (404), held, or slow; the listing can page wrongly and has a clock of
its own. For the listener's tests and its benchmark."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from batch.serving import serve

LOGIN = "/api/auth/v2/api_login/"


@dataclass
class FakeApi:
    """The fake's behaviour (change it while it runs) and what it saw."""

    statuses: dict[str, str] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    refuse_login: bool = False
    delay: float = 0.0
    #: While set, reads wait until it is released (``hold.set()``).
    hold: asyncio.Event | None = None
    reads: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight: Counter[str] = field(default_factory=Counter)
    logins: int = 0
    url: str = ""
    #: The listing's hits (``GET /api/test``), the server's Date header, the queries seen.
    listing: list[dict[str, str]] = field(default_factory=list)
    date: str = "Mon, 05 Feb 2024 01:31:43 GMT"
    queries: list[dict[str, str]] = field(default_factory=list)
    #: A listing that answers the first page whatever ``from`` says, or whose total grows.
    ignore_from: bool = False
    growing_total: bool = False

    @property
    def peak(self) -> int:
        """The most reads of one case ever in flight at once."""
        return max(self.max_in_flight.values(), default=0)

    async def login(self, request: web.Request) -> web.Response:
        self.logins += 1
        if self.refuse_login:
            return web.json_response({"message": "Invalid credentials"}, status=401)
        return web.json_response({"access_token": f"token-{self.logins}",
                                  "token_type": "bearer"})

    async def case(self, request: web.Request) -> web.Response:
        name = request.match_info["case"]
        self.reads[name] += 1
        self.in_flight[name] += 1
        self.max_in_flight[name] = max(self.max_in_flight[name], self.in_flight[name])
        try:
            if self.hold is not None:
                await self.hold.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight[name] -= 1
        if name in self.forbidden:
            return web.json_response({"message": "Forbidden"}, status=403)
        if name in self.missing:
            return web.json_response({"message": "Not found"}, status=404)
        return web.json_response({"name": name, "status": self.statuses.get(name, "delivered"),
                                  "reports": []})

    async def list_cases(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        start = 0 if self.ignore_from else int(request.query.get("from", "0"))
        size = int(request.query.get("size", "20"))
        total = len(self.listing) + (len(self.queries) if self.growing_total else 0)
        return web.json_response({"hits": self.listing[start:start + size], "total": total},
                                 headers={"Date": self.date})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(LOGIN, self.login)
        app.router.add_get("/api/test/{case}/", self.case)
        app.router.add_get("/api/test", self.list_cases)
        return app


@asynccontextmanager
async def running_fake(fake: FakeApi | None = None) -> AsyncIterator[FakeApi]:
    """Serve *fake* (or a new one) on loopback for the block; its ``url`` is set."""
    fake = fake or FakeApi()
    async with serve(fake.app()) as served:
        fake.url = served.url
        yield fake
