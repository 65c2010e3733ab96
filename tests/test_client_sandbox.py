"""The client against a real sandbox on loopback: rate limits, errors, latency, expiry, drops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp
import pytest

from batch.api import Client, Credentials, RetryPolicy
from batch.errors import AmbiguousCreate, AuthError, RetriesExhausted
from batch.payload import ApiResolver, ResolveError, Resolver
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, run_sandbox
from tests.corpus import CONFORMANCE_DIR, FIXTURE

CONFORMANCE = CONFORMANCE_DIR
CREDS = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
LOGIN_ROUTE = "POST /api/auth/v2/api_login"
CREATE_ROUTE = "POST /api/cases/v2/cases"



def payload() -> dict[str, Any]:
    """A payload the official CLI sent and the sandbox accepts."""
    with (CONFORMANCE / "v002_random_1fam.expected.jsonl").open(encoding="utf-8") as lines:
        body: dict[str, Any] = json.loads(lines.readline())["payload"]
    return body


async def sandbox_json(url: str, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url + path) as resp:
        return await resp.json()


async def route_counts(url: str, route: str) -> dict[str, int]:
    stats = await sandbox_json(url, "/_sandbox/stats")
    counts: dict[str, int] = stats["requests"].get(route, {})
    return counts


async def set_faults(url: str, **faults: Any) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/_sandbox/faults", json=faults) as resp,
    ):
        assert resp.status == 200, await resp.text()


Env = Callable[..., AbstractAsyncContextManager[tuple[str, Client]]]


@pytest.fixture
def env() -> Env:
    """``async with env(sandbox options..., client=dict(...)) as (url, client)``."""

    @asynccontextmanager
    async def make(
        *, client: dict[str, Any] | None = None, **config: Any
    ) -> AsyncIterator[tuple[str, Client]]:
        options: dict[str, Any] = {"rate": 1000.0, "retry": RetryPolicy.for_testing()}
        options.update(client or {})
        async with (
            run_sandbox(SandboxConfig(fixture=FIXTURE, seed=0, **config)) as sb,
            Client(sb.url, credentials=options.pop("credentials", CREDS), **options) as api,
        ):
            yield sb.url, api

    return make


@pytest.mark.slow
async def test_fixed_rate_under_the_limit_gets_no_429(env: Env) -> None:
    async with env(rate_limit=20, client={"rate": 20.0, "retry": RetryPolicy()}) as (url, c):
        await asyncio.gather(*(c.find_samples(f"S{i}") for i in range(40)))
        assert c.stats.rate_limited == 0
        assert "429" not in await route_counts(url, "GET /api/sample")


@pytest.mark.slow
async def test_adaptive_rate_recovers_from_429s(env: Env) -> None:
    async with env(rate_limit=30, client={"rate": None, "retry": RetryPolicy()}) as (url, c):
        await asyncio.gather(*(c.find_samples(f"S{i}") for i in range(120)))
        server = await route_counts(url, "GET /api/sample")
        assert server.get("200") == 120
        assert c.stats.rate_limited == server.get("429", 0)
        assert c.stats.retries == c.stats.rate_limited


async def test_error_rate_reads_are_retried(env: Env) -> None:
    async with env(error_rate=0.3) as (url, c):
        results = await asyncio.gather(
            *(c.find_samples(f"S{i}") for i in range(100)), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        # 500 is retried only once, so a rare request may give up; nothing else may fail.
        assert all(isinstance(f, RetriesExhausted) and f.status == 500 for f in failures)
        assert len(failures) <= 5
        server = await route_counts(url, "GET /api/sample")
        assert sum(server.values()) == c.stats.requests - 1  # minus the login
        assert c.stats.retries > 0


async def test_error_rate_creates_never_duplicate(env: Env) -> None:
    async with env(error_rate=0.3) as (url, c):
        outcomes = await asyncio.gather(
            *(c.create_case(payload()) for _ in range(30)), return_exceptions=True
        )
        created = [o for o in outcomes if not isinstance(o, BaseException)]
        ambiguous = [o for o in outcomes if isinstance(o, AmbiguousCreate)]
        assert len(created) + len(ambiguous) == 30
        assert c.stats.ambiguous == len(ambiguous)
        cases = await sandbox_json(url, "/_sandbox/cases")
        # Injected errors answer before any state changes: one case per success, no more.
        assert cases["total"] == len(created)
        sent = sum((await route_counts(url, CREATE_ROUTE)).values())
        assert sent == 30 + c.stats.retries  # only 429/503 were re-sent


@pytest.mark.slow
async def test_latency_beyond_timeout(env: Env) -> None:
    options = {"timeout": 0.2, "retry": RetryPolicy.for_testing(attempts=2)}
    async with env(client=options) as (url, c):
        await c.login()  # before the latency: logins would time out too
        await set_faults(url, latency_ms=600)
        with pytest.raises(RetriesExhausted, match="no answer in time"):
            await c.find_samples("S1")
        with pytest.raises(AmbiguousCreate, match="no answer in time"):
            await c.create_case(payload())
        assert c.stats.requests == 1 + 2 + 1  # login, two reads, one create


@pytest.mark.slow
async def test_expired_token_64_concurrent_requests_one_login(env: Env) -> None:
    async with env(token_ttl=1.0, client={"concurrency": 64, "rate": 100000.0}) as (url, c):
        await c.login()
        await asyncio.sleep(1.1)  # the token has expired
        await asyncio.gather(*(c.find_samples(f"S{i}") for i in range(64)))
        assert c.stats.logins == 2
        assert (await route_counts(url, LOGIN_ROUTE)).get("200") == 2
        assert "403" in await route_counts(url, "GET /api/sample")


async def test_drop_after_commit_is_ambiguous_and_reconcilable(env: Env) -> None:
    async with env(drop_after_commit=1.0) as (url, c):
        with pytest.raises(AmbiguousCreate, match="connection closed"):
            await c.create_case(payload())
        cases = await sandbox_json(url, "/_sandbox/cases")
        assert cases["total"] == 1  # created once, never re-sent
        proband = payload()["test_data"]["patients"]["proband"]["fastq_sample"]
        hits = await c.find_samples(proband)
        assert [h["note"] for h in hits] == [cases["hits"][0]["name"]]


async def test_refused_login_stops(env: Env) -> None:
    bad = Credentials(username=DEFAULT_USER, password="wrong")
    async with env(client={"credentials": bad}) as (url, c):
        with pytest.raises(AuthError, match="login refused"):
            await c.find_samples("S1")
        with pytest.raises(AuthError):
            await c.find_samples("S2")
        assert sum((await route_counts(url, LOGIN_ROUTE)).values()) == 1
        assert "GET /api/sample" not in (await sandbox_json(url, "/_sandbox/stats"))["requests"]


async def test_resolver_and_lookups(env: Env) -> None:
    async with env() as (_, c):
        resolver: Resolver = ApiResolver(c)  # the payload builder's protocol
        assert (await resolver.storage(900))["scheme"] == "basespace"
        projects = await resolver.list_dir(900, "/projects")
        assert projects and all("alias" in p for p in projects)
        assert await resolver.find_sample("NO-SUCH-SAMPLE") is None
        users = await c.org_users()
        assert await c.user_ids([users[0]["email"].upper()]) == [users[0]["id"]]
        with pytest.raises(ResolveError, match="424242"):
            await resolver.storage(424242)
        with pytest.raises(ResolveError):
            await resolver.list_dir(424242, "/projects")
