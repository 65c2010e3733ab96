"""Fault injection of the sandbox, over real HTTP on loopback."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, run_sandbox
from tests.corpus import CONFORMANCE_DIR

CORPUS = CONFORMANCE_DIR
LOGIN = {"username": DEFAULT_USER, "password": DEFAULT_PASSWORD}


def payload() -> dict[str, Any]:
    line = (CORPUS / "v001_random_5fam.expected.jsonl").read_text(encoding="utf-8").splitlines()[0]
    result: dict[str, Any] = json.loads(line)["payload"]
    return result


async def login(session: aiohttp.ClientSession, url: str) -> dict[str, str]:
    async with session.post(url + "/api/auth/v2/api_login/", json=LOGIN) as resp:
        assert resp.status == 200
        return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def get_status(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    async with session.get(url + "/api/user/org_users/", headers=headers) as resp:
        await resp.read()
        return resp.status


async def test_rate_limit_answers_429_with_retry_after() -> None:
    async with run_sandbox(SandboxConfig(rate_limit=2)) as sb, aiohttp.ClientSession() as s:
        headers = await login(s, sb.url)  # takes one of the 2 burst tokens
        assert await get_status(s, sb.url, headers) == 200
        async with s.get(sb.url + "/api/user/org_users/", headers=headers) as resp:
            assert resp.status == 429
            assert await resp.json() == {"message": "Too many requests"}
            assert int(resp.headers["Retry-After"]) >= 1
        async with s.post(sb.url + "/_sandbox/faults", json={"rate_limit": None}) as resp:
            assert (await resp.json())["rate_limit"] is None
        assert await get_status(s, sb.url, headers) == 200


async def test_slow_rate_gives_longer_retry_after() -> None:
    async with run_sandbox(SandboxConfig(rate_limit=0.2)) as sb, aiohttp.ClientSession() as s:
        await login(s, sb.url)
        async with s.post(sb.url + "/api/auth/v2/api_login/", json=LOGIN) as resp:
            assert resp.status == 429 and int(resp.headers["Retry-After"]) in (4, 5)


async def test_latency_is_added() -> None:
    async with run_sandbox(SandboxConfig(latency_ms=150)) as sb, aiohttp.ClientSession() as s:
        started = time.monotonic()
        await login(s, sb.url)
        assert time.monotonic() - started >= 0.14


async def _error_mix(seed: int) -> list[tuple[int, str]]:
    config = SandboxConfig(error_rate=0.5, seed=seed)
    seen = []
    async with run_sandbox(config) as sb, aiohttp.ClientSession() as s:
        headers = await login(s, sb.url)  # login is never failed on purpose
        for _ in range(60):
            async with s.get(sb.url + "/api/user/org_users/", headers=headers) as resp:
                seen.append((resp.status, resp.content_type))
    return seen


async def test_error_rate_is_seeded_and_mixed() -> None:
    first = await _error_mix(7)
    assert first == await _error_mix(7)
    kinds = Counter(first)
    assert {s for s, _ in kinds} <= {200, 500, 502, 503}
    assert 10 < sum(n for (s, _), n in kinds.items() if s != 200) < 50
    assert {"text/plain", "application/json"} <= {c for (s, c) in kinds if s != 200}
    assert len({s for s, _ in kinds} - {200}) >= 2


async def test_error_rate_changes_nothing(fixture_path: Path) -> None:
    config = SandboxConfig(fixture=fixture_path, error_rate=1.0)
    async with run_sandbox(config) as sb, aiohttp.ClientSession() as s:
        headers = await login(s, sb.url)
        for _ in range(5):
            async with s.post(sb.url + "/api/cases/v2/cases", json=payload(),
                              headers=headers) as resp:
                assert resp.status in (500, 502, 503)
        assert sb.state.cases == {}


async def test_drop_after_commit_stores_the_case_and_closes(fixture_path: Path) -> None:
    config = SandboxConfig(fixture=fixture_path, drop_after_commit=1.0)
    async with run_sandbox(config) as sb, aiohttp.ClientSession() as s:
        headers = await login(s, sb.url)
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with s.post(sb.url + "/api/cases/v2/cases?dry_run=false", json=payload(),
                              headers=headers) as resp:
                await resp.read()
        async with s.post(sb.url + "/api/cases/v2/cases?dry_run=true", json=payload(),
                          headers=headers) as resp:
            assert resp.status == 200  # dry runs are never dropped
        async with s.get(sb.url + "/_sandbox/cases") as resp:
            cases = await resp.json()
        assert cases["total"] == 1 and cases["hits"][0]["proband_sample"] == "BC-0006"
        params = {"query": "BC-0006", "sampleType": "fastq", "exact_match": "true"}
        async with s.get(sb.url + "/api/sample/", params=params, headers=headers) as resp:
            assert (await resp.json())["hits"][0]["note"] == cases["hits"][0]["name"]
        async with s.get(sb.url + "/_sandbox/stats") as resp:
            stats = (await resp.json())["requests"]
        assert stats["POST /api/cases/v2/cases"] == {"dropped": 1, "200": 1}


async def test_outage_and_runtime_fault_settings() -> None:
    async with run_sandbox(SandboxConfig()) as sb, aiohttp.ClientSession() as s:
        headers = await login(s, sb.url)
        async with s.post(sb.url + "/_sandbox/faults", json={"outage_seconds": 30}) as resp:
            settings = await resp.json()
            assert resp.status == 200 and settings["outage_seconds"] > 29
        assert await get_status(s, sb.url, headers) == 503
        async with s.post(sb.url + "/_sandbox/faults", json={"outage_seconds": 0,
                                                             "token_ttl": 0}) as resp:
            assert (await resp.json())["token_ttl"] == 0
        assert await get_status(s, sb.url, headers) == 403
        for bad in ({"error_rate": 2}, {"nope": 1}, {"latency_ms": "x"}, [1]):
            async with s.post(sb.url + "/_sandbox/faults", json=bad) as resp:
                assert resp.status == 400, bad


async def test_rate_limit_headers_show_the_bucket_when_asked() -> None:
    config = SandboxConfig(rate_limit=4, rate_limit_headers=True)
    async with run_sandbox(config) as sb, aiohttp.ClientSession() as s:
        async with s.post(sb.url + "/api/auth/v2/api_login/", json=LOGIN) as resp:
            assert resp.status == 200
            assert resp.headers["RateLimit-Policy"] == "4;w=1"
            assert resp.headers["RateLimit-Limit"] == resp.headers["X-RateLimit-Limit"] == "4"
            assert resp.headers["RateLimit-Remaining"] == "3"  # one of the 4 taken
            assert resp.headers["X-RateLimit-Reset"] == "1"
        for _ in range(4):
            async with s.post(sb.url + "/api/auth/v2/api_login/", json=LOGIN) as resp:
                await resp.read()
        assert resp.status == 429 and resp.headers["RateLimit-Remaining"] == "0"
    async with (run_sandbox(SandboxConfig(rate_limit=4)) as sb, aiohttp.ClientSession() as s,
                s.post(sb.url + "/api/auth/v2/api_login/", json=LOGIN) as resp):
        assert not any(k.lower().startswith(("ratelimit", "x-ratelimit")) for k in resp.headers)
