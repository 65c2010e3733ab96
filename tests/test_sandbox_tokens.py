"""Tokens as a real tenant hands them out: a JWT from the legacy login, an opaque v2 token,
3600 s by default, and expiry answered 403 or 401."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, run_sandbox
from batch.sandbox.config import DEFAULT_TOKEN_TTL

LOGIN = {"username": DEFAULT_USER, "password": DEFAULT_PASSWORD}


def segment(part: str) -> dict[str, Any]:
    """One base64url JSON part of a JWT."""
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


async def _session(config: SandboxConfig) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    async with run_sandbox(config) as sb, aiohttp.ClientSession() as session:
        yield sb.url, session


async def legacy(url: str, session: aiohttp.ClientSession) -> str:
    async with session.post(url + "/api/auth/api_login/", json=LOGIN) as resp:
        assert resp.status == 200
        value: str = (await resp.json())["Authorization"]
        return value


async def status_with(url: str, session: aiohttp.ClientSession, header: str) -> tuple[int, Any]:
    async with session.get(url + "/api/user/org_users/",
                           headers={"Authorization": header}) as resp:
        return resp.status, await resp.json()


def test_the_default_lifetime_is_the_real_tokens() -> None:
    assert DEFAULT_TOKEN_TTL == 3600 and SandboxConfig().token_ttl == 3600
    assert SandboxConfig().expired_status == 403
    with pytest.raises(ValueError, match="401 or 403"):
        SandboxConfig(expired_status=500)


async def test_legacy_login_answers_a_jwt_with_iat_exp_and_sub() -> None:
    async for url, session in _session(SandboxConfig()):
        before = time.time()
        header = await legacy(url, session)
        scheme, token = header.split(" ")
        head, claims, signature = token.split(".")
        assert scheme == "Bearer" and signature
        assert segment(head)["alg"] == "HS256" and segment(head)["typ"] == "JWT"
        payload = segment(claims)
        assert payload["sub"] == DEFAULT_USER and isinstance(payload["iat"], int)
        assert payload["exp"] - payload["iat"] == 3600
        assert before - 1 <= payload["iat"] <= time.time()
        assert header != await legacy(url, session)  # one token per login
        assert (await status_with(url, session, header))[0] == 200


async def test_the_jwt_lifetime_follows_the_setting() -> None:
    async for url, session in _session(SandboxConfig(token_ttl=90)):
        payload = segment((await legacy(url, session)).split(" ")[1].split(".")[1])
        assert payload["exp"] - payload["iat"] == 90


async def test_the_v2_token_stays_opaque() -> None:
    async for url, session in _session(SandboxConfig()):
        async with session.post(url + "/api/auth/v2/api_login/", json=LOGIN) as resp:
            token = (await resp.json())["access_token"]
        assert "." not in token
        tenant, _uuid = base64.b64decode(token).decode().split(",")
        assert tenant == "sandbox"
        assert (await status_with(url, session, f"Bearer {token}"))[0] == 200


@pytest.mark.slow
@pytest.mark.parametrize("expired", [401, 403])
async def test_an_expired_token_answers_the_configured_status(expired: int) -> None:
    async for url, session in _session(SandboxConfig(token_ttl=0.3, expired_status=expired)):
        header = await legacy(url, session)
        assert (await status_with(url, session, header))[0] == 200
        await asyncio.sleep(0.4)
        status, body = await status_with(url, session, header)
        assert (status, body) == (expired, {"message": "Token expired"})
        assert (await status_with(url, session, "Bearer not-a-token"))[0] == 401
        assert (await status_with(url, session, await legacy(url, session)))[0] == 200


async def test_the_jwt_never_outlives_the_sandboxs_own_expiry() -> None:
    async for url, session in _session(SandboxConfig(token_ttl=0.5)):
        header = await legacy(url, session)
        exp = segment(header.split(" ")[1].split(".")[1])["exp"]
        while time.time() < exp:  # a client that trusts exp never meets a refusal
            assert (await status_with(url, session, header))[0] == 200
            await asyncio.sleep(0.05)


async def test_a_get_with_an_empty_json_body_is_accepted() -> None:
    async for url, session in _session(SandboxConfig()):
        header = await legacy(url, session)
        async with session.get(url + "/api/user/org_users/", json={},
                               headers={"Authorization": header}) as resp:
            assert resp.status == 200 and (await resp.json())["total"] >= 1
