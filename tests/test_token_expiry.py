"""Tokens that say when they expire (JWTs): renewed once for all shortly before, so no request
goes out on a token about to run out; a ready EMG_TOKEN that will run out is announced."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiohttp import web

from batch.api import Credentials
from batch.api.auth import MARGIN, claims, lifetime
from tests.transport_server import LOGIN, USER, claims_of, client, jwt, serve, token_answer

CREATE = "/api/cases/v2/cases"


class Issuer:
    """Logs in with JWTs of *ttl* seconds; refuses an expired one (401) and records how much
    life each request's token had left when it arrived."""

    def __init__(self, ttl: float, *, legacy: bool = False) -> None:
        self.ttl = ttl
        self.legacy = legacy
        self.logins = 0
        self.left: list[tuple[str, float]] = []
        self.refused = 0

    async def __call__(self, request: web.Request) -> web.Response:
        now = time.time()
        if request.path == LOGIN or request.path == "/api/auth/api_login/":
            self.logins += 1
            token = jwt(exp=now + self.ttl, iat=now)
            if self.legacy:
                return web.json_response({"Authorization": f"Bearer {token}"})
            return token_answer(token)
        left = float(claims_of(request.headers["Authorization"])["exp"]) - now  # type: ignore[arg-type]
        self.left.append((request.method, left))
        if left <= 0:
            self.refused += 1
            return web.json_response({"message": "token expired"}, status=401)
        if request.method == "POST":
            return web.json_response({"name": "EMG1"}, status=201)
        return web.json_response({"name": "EMG1", "status": "finalized"})


@pytest.mark.slow
async def test_short_lived_tokens_are_renewed_once_for_all_before_they_expire() -> None:
    issuer = Issuer(3.0)
    async with serve(issuer) as fake, client(fake.url, concurrency=8) as c:
        stop = time.monotonic() + 4.5

        async def worker(n: int) -> None:
            while time.monotonic() < stop:
                if n % 2:
                    await c.create_case({"caseType": "Exome"})
                else:
                    await c.get_case("EMG1")
                await asyncio.sleep(0.02)

        await asyncio.gather(*(worker(n) for n in range(8)))
    assert issuer.refused == 0  # no request, create or read, carried an expired token
    creates = [left for method, left in issuer.left if method == "POST"]
    assert creates and min(creates) > 0.05  # renewed 0.3 s (10 % of 3 s) before expiry
    assert 2 <= issuer.logins <= 3  # one login per lifetime, not one per waiting request
    assert c.stats.logins == issuer.logins


async def test_the_legacy_login_answer_is_accepted() -> None:
    issuer = Issuer(3600.0, legacy=True)
    async with serve(issuer) as fake, client(fake.url) as c:
        await c.get_case("EMG1")
        assert c.token_expires_at is not None
        assert abs(c.token_expires_at - (time.time() + 3600)) < 5
    assert fake.seen[1].headers["Authorization"].count("Bearer") == 1


async def test_an_emg_token_close_to_its_end_is_replaced_before_it_is_sent() -> None:
    now = time.time()
    old = jwt(exp=now + 60, iat=now - 3540)  # 1 h token, 1 min left: within 120 s
    issuer = Issuer(3600.0)
    both = Credentials(username=USER.username, password=USER.password, token=old)
    async with serve(issuer) as fake, client(fake.url, credentials=both) as c:
        await c.get_case("EMG1")
    assert [s.path for s in fake.seen] == [LOGIN, "/api/test/EMG1/"]
    assert old not in fake.seen[1].headers["Authorization"]


async def test_a_token_received_already_expired_causes_no_login_storm() -> None:
    async def skewed(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer(jwt(exp=time.time() - 30))  # a server clock behind ours
        return web.json_response({"name": "EMG1"})

    async with serve(skewed) as fake, client(fake.url) as c:
        for _ in range(10):
            await c.get_case("EMG1")
    assert fake.count("POST", LOGIN) == 1


async def test_an_opaque_token_has_no_known_expiry() -> None:
    issuer_calls = []

    async def opaque(request: web.Request) -> web.Response:
        issuer_calls.append(request.path)
        return token_answer("cGNoLXRlc3RpbmcsMTIzNDU2Nzg=") if request.path == LOGIN else \
            web.json_response({"name": "EMG1"})

    async with serve(opaque) as fake, client(fake.url) as c:
        await c.get_case("EMG1")
        assert c.token_expires_at is None
        await c.get_case("EMG1")
    assert fake.count("POST", LOGIN) == 1


async def test_a_ready_token_that_will_run_out_is_announced_at_open(
        caplog: pytest.LogCaptureFixture) -> None:
    token = jwt(exp=time.time() + 12 * 60 + 30)
    async with serve(Issuer(60)) as fake:
        with caplog.at_level(logging.WARNING, logger="batch.api.client"):
            async with client(fake.url, credentials=Credentials(token=token)) as c:
                assert c.token_expires_at == pytest.approx(time.time() + 750, abs=5)
                assert not c.can_relogin
    assert caplog.messages == [
        "EMG_TOKEN expires in 12 min; a longer run stops when it does; set EMG_USERNAME and "
        "EMG_PASSWORD so emg-batch can log in again"]
    assert token not in caplog.text


async def test_an_expired_ready_token_is_announced_and_one_with_a_password_is_not(
        caplog: pytest.LogCaptureFixture) -> None:
    expired = jwt(exp=time.time() - 300)
    async with serve(Issuer(60)) as fake:
        with caplog.at_level(logging.WARNING, logger="batch.api.client"):
            async with client(fake.url, credentials=Credentials(token=expired)):
                pass
            both = Credentials(username=USER.username, password=USER.password, token=expired)
            async with client(fake.url, credentials=both):
                pass
    assert len(caplog.messages) == 1
    assert caplog.messages[0].startswith("EMG_TOKEN expired 5 min ago; set EMG_USERNAME")


def test_the_renewal_margin_is_120_s_or_a_tenth_of_the_lifetime() -> None:
    now = 1_000_000.0
    hour = lifetime(jwt(exp=now + 3600, iat=now), now=now)
    assert hour is not None and hour.renew_at == now + 3600 - MARGIN
    short = lifetime(jwt(exp=now + 10), now=now)
    assert short is not None and short.renew_at == pytest.approx(now + 9)
    nearly_spent = lifetime(jwt(exp=now + 30, iat=now - 3570), now=now)
    assert nearly_spent is not None and nearly_spent.renew_at == now + 15  # half the rest
    spent = lifetime(jwt(exp=now - 1), now=now)
    assert spent is not None and spent.renew_at is None
    ready = lifetime(jwt(exp=now + 30, iat=now - 3570), now=now, fresh=False)
    assert ready is not None and ready.renew_at == now + 30 - MARGIN  # due at once
    ready_spent = lifetime(jwt(exp=now - 1), now=now, fresh=False)
    assert ready_spent is not None and ready_spent.renew_at == now - 1


@pytest.mark.parametrize("token", [
    "opaque-token", "a.b.c", "a..c", "a.!!!.c", "x" * 20000,
    jwt(exp=1.0).replace(".", "", 1),
])
def test_tokens_that_are_not_jwts_say_nothing(token: str) -> None:
    assert lifetime(token, now=0.0) is None


def test_an_exp_that_is_not_a_number_says_nothing() -> None:
    import base64
    import json
    for exp in (True, "2030-01-01", None, [1]):
        payload = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).decode()
        assert lifetime(f"e30.{payload.rstrip('=')}.sig", now=0.0) is None
    assert claims(jwt(exp=5.0)) == {"sub": "u@example.com", "exp": 5.0}
