"""A running sandbox and a client logged in to it, for tests of the pull commands' library."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from batch.api import Client, Credentials
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, run_sandbox
from tests.cases import create_minimal


class Env:
    """A running sandbox and a client logged in to it."""

    def __init__(self, url: str, client: Client) -> None:
        self.url = url
        self.client = client

    async def create(self, count: int, *, finalize: int = 0, prefix: str = "PULL") -> list[str]:
        """Create *count* cases (probands ``<prefix>-0000``...), the first *finalize* finalized."""
        names = [await create_minimal(self.client, f"{prefix}-{n:04d}") for n in range(count)]
        for name in names[:finalize]:
            await self.client.set_status(name, "finalized")
        return names

    async def advance(self, case: str, status: str) -> None:
        """Move *case* to *status* through the sandbox's own route."""
        async with aiohttp.ClientSession() as s, s.post(
            f"{self.url}/_sandbox/advance", json={"case": case, "status": status}
        ) as resp:
            assert resp.status == 200

    async def count(self, route: str, code: str = "200") -> int:
        """How often the sandbox answered *route* with *code*."""
        async with aiohttp.ClientSession() as s, s.get(f"{self.url}/_sandbox/stats") as resp:
            stats = await resp.json()
        return int(stats["requests"].get(route, {}).get(code, 0))


@asynccontextmanager
async def sandbox_env() -> AsyncIterator[Env]:
    """A fresh sandbox (new cases delivered at once) and a client for it."""
    async with run_sandbox(SandboxConfig(advance_after=0)) as sandbox:
        creds = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
        async with Client(sandbox.url, credentials=creds, concurrency=4, rate=500) as client:
            yield Env(sandbox.url, client)
