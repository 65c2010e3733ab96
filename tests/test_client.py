"""Single-request behaviour of the Emedgene client, against aioresponses."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import aiohttp
import pytest
from aioresponses import aioresponses as _aioresponses

from batch.api import (
    Client,
    CreateResult,
    Credentials,
    RetryBudget,
    RetryPolicy,
    normalise_host,
    parse_retry_after,
    server_message,
)
from batch.errors import (
    AmbiguousCreate,
    AuthError,
    Forbidden,
    NotFound,
    PermanentError,
    RateLimited,
    RetriesExhausted,
    UsageError,
)


class _Response(aiohttp.ClientResponse):
    """aioresponses 0.7.9 predates aiohttp 3.14's required ``stream_writer`` argument."""

    def __init__(self, method: str, url: Any, **kw: Any) -> None:
        kw.setdefault("stream_writer", Mock(output_size=0))
        super().__init__(method, url, **kw)


class aioresponses(_aioresponses):
    """aioresponses with a response class that works with this aiohttp."""

    def add(self, url: Any, method: str = "GET", *args: Any, **kw: Any) -> None:
        kw.setdefault("response_class", _Response)
        super().add(url, method, *args, **kw)


HOST = "http://127.0.0.1:9"
LOGIN = f"{HOST}/api/auth/v2/api_login/"
CASE = f"{HOST}/api/test/EMG123456789/"
CREATE = re.compile(r"^http://127\.0\.0\.1:9/api/cases/v2/cases\?dry_run=false$")
DRY_RUN = re.compile(r"^http://127\.0\.0\.1:9/api/cases/v2/cases\?dry_run=true$")
PASSWORD = "pa55-word-xyz"
TOKEN = "tok-SECRET-abc"
USER = Credentials(username="u@example.com", password=PASSWORD)


def make(credentials: Credentials = USER, *, retry: RetryPolicy | None = None, **kw: Any) -> Client:
    kw.setdefault("rate", 1000.0)
    return Client(HOST, credentials=credentials, retry=retry or RetryPolicy.for_testing(), **kw)


def login_ok(m: Any, token: str = TOKEN, *, repeat: bool = False) -> None:
    m.post(LOGIN, payload={"access_token": token, "token_type": "bearer"}, repeat=repeat)


def calls(m: Any, method: str, url: str | re.Pattern[str]) -> int:
    total = 0
    for (meth, u), reqs in m.requests.items():
        text = str(u)
        hit = url.match(text) if isinstance(url, re.Pattern) else text == url
        if meth == method and hit:
            total += len(reqs)
    return total


# --------------------------------------------------------------------------- configuration


def test_host_rules() -> None:
    assert normalise_host("https://t.emg.illumina.com/") == "https://t.emg.illumina.com"
    assert normalise_host("t.emg.illumina.com") == "https://t.emg.illumina.com"
    assert normalise_host("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert normalise_host("http://localhost:1") == "http://localhost:1"
    assert normalise_host("http://[::1]:1") == "http://[::1]:1"
    with pytest.raises(UsageError, match="https://"):
        normalise_host("http://t.emg.illumina.com")
    with pytest.raises(UsageError):
        normalise_host("ftp://t.emg.illumina.com")


def test_credentials_from_env() -> None:
    creds = Credentials.from_env({"EMG_USERNAME": "a@b", "EMG_PASSWORD": PASSWORD})
    assert creds.can_login and creds.token is None
    assert Credentials.from_env({"EMG_TOKEN": "Bearer xyz"}).token == "xyz"
    with pytest.raises(UsageError, match="EMG_PASSWORD"):
        Credentials.from_env({"EMG_USERNAME": "a@b"})
    with pytest.raises(UsageError, match="EMG_TOKEN"):
        Credentials.from_env({})


def test_secrets_stay_out_of_reprs() -> None:
    creds = Credentials(username="u", password=PASSWORD, token=TOKEN)
    client = make(creds)
    for text in (repr(creds), str(creds), repr(client), repr(client.stats)):
        assert PASSWORD not in text and TOKEN not in text


def test_error_bodies() -> None:
    assert server_message(400, '{"message": "Gene list 999 does not exist"}') == (
        "Gene list 999 does not exist"
    )
    assert server_message(400, "plain words\n") == "plain words"
    assert server_message(500, '{"error": 1}') == "Request failed with status code 500"
    assert server_message(502, "") == "Request failed with status code 502"
    assert server_message(400, '"a json string"') == "a json string"


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    from datetime import UTC, datetime

    now = datetime(2024, 2, 1, 16, 10, 40, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Feb 2024 16:10:45 GMT", now=now) == 5.0
    assert parse_retry_after("Thu, 01 Feb 2024 16:10:35 GMT", now=now) == 0.0


def test_backoff_is_full_jitter() -> None:
    policy = RetryPolicy(wait_initial=0.2, wait_max=1.0)
    assert all(0 <= policy.backoff(0) <= 0.2 for _ in range(50))
    assert all(0 <= policy.backoff(10) <= 1.0 for _ in range(50))
    assert RetryPolicy.for_testing().backoff(5) == 0.0


# --------------------------------------------------------------------------- auth


async def test_lazy_login_and_bearer_header() -> None:
    with aioresponses() as m:
        login_ok(m)
        m.get(CASE, payload={"name": "EMG123456789"})
        async with make() as client:
            assert (await client.get_case("EMG123456789"))["name"] == "EMG123456789"
        ((_, reqs),) = [(k, v) for k, v in m.requests.items() if k[0] == "GET"]
        assert reqs[0].kwargs["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert client.stats.logins == 1


async def test_401_then_relogin_then_success() -> None:
    with aioresponses() as m:
        login_ok(m, "old")
        login_ok(m, "new")
        m.get(CASE, status=401, payload={"message": "Unauthorized"})
        m.get(CASE, payload={"name": "EMG123456789"})
        async with make() as client:
            await client.get_case("EMG123456789")
        assert client.stats.logins == 2
        assert calls(m, "POST", LOGIN) == 2


async def test_refused_twice_is_auth_error() -> None:
    with aioresponses() as m:
        login_ok(m, repeat=True)
        m.get(CASE, status=401, body="Unauthorized", repeat=True)
        async with make() as client:
            with pytest.raises(AuthError):
                await client.get_case("EMG123456789")
        assert calls(m, "GET", CASE) == 2


async def test_forbidden_twice_is_a_missing_role_not_an_auth_error() -> None:
    with aioresponses() as m:
        login_ok(m, repeat=True)
        m.get(CASE, status=403, body="Forbidden", repeat=True)
        async with make() as client:
            with pytest.raises(Forbidden, match="lacks the role for GET /api/test/"):
                await client.get_case("EMG123456789")
        assert calls(m, "GET", CASE) == 2


async def test_bare_token_refused_does_not_login() -> None:
    with aioresponses() as m:
        m.get(CASE, status=403, body="expired")
        async with make(Credentials(token=TOKEN)) as client:
            with pytest.raises(AuthError, match="EMG_USERNAME") as info:
                await client.get_case("EMG123456789")
        assert TOKEN not in str(info.value)
        assert calls(m, "POST", LOGIN) == 0


async def test_login_refused_stops_without_hammering() -> None:
    with aioresponses() as m:
        m.post(LOGIN, status=401, payload={"message": "Invalid credentials"}, repeat=True)
        async with make() as client:
            with pytest.raises(AuthError, match="Invalid credentials") as info:
                await client.get_case("EMG123456789")
            with pytest.raises(AuthError):
                await client.case_info("EMG123456789")
        assert PASSWORD not in str(info.value)
        assert calls(m, "POST", LOGIN) == 1


async def test_concurrent_expired_token_logs_in_once() -> None:
    with aioresponses() as m:
        login_ok(m, "old")
        login_ok(m, "new")

        # Every request with the old token is refused; with the new one it succeeds.
        def answer(url: Any, **kwargs: Any) -> Any:
            from aioresponses import CallbackResult

            if kwargs["headers"]["Authorization"] == "Bearer old":
                return CallbackResult(status=403, body="Token expired", response_class=_Response)
            return CallbackResult(status=200, payload={"ok": True}, response_class=_Response)

        m.get(CASE, callback=answer, repeat=True)
        async with make(rate=100000.0, concurrency=64) as client:
            await client.login()
            await asyncio.gather(*(client.get_case("EMG123456789") for _ in range(64)))
        assert client.stats.logins == 2
        assert calls(m, "POST", LOGIN) == 2


# --------------------------------------------------------------------------- retries


@pytest.mark.slow
async def test_429_then_200_honours_retry_after_for_everyone() -> None:
    policy = RetryPolicy(wait_initial=0.0, wait_max=0.0)
    with aioresponses() as m:
        login_ok(m)
        m.get(
            CASE, status=429, payload={"message": "Too many requests"}, headers={"Retry-After": "1"}
        )
        m.get(CASE, payload={"name": "EMG123456789"}, repeat=True)
        async with make(retry=policy) as client:
            await client.login()
            start = time.monotonic()
            first = asyncio.create_task(client.get_case("EMG123456789"))
            await asyncio.sleep(0.05)  # the 429 has arrived and set the shared pause
            await client.get_case("EMG123456789")  # an unrelated request waits too
            other_elapsed = time.monotonic() - start
            await first
        assert other_elapsed >= 0.9
        assert client.stats.rate_limited == 1
        assert client.stats.retries == 1


async def test_pause_all_holds_requests() -> None:
    with aioresponses() as m:
        login_ok(m)
        m.get(CASE, payload={}, repeat=True)
        async with make() as client:
            await client.login()
            await client.pause_all(0.3)
            start = time.monotonic()
            await client.get_case("EMG123456789")
            assert time.monotonic() - start >= 0.25


async def test_503_burst_then_success() -> None:
    with aioresponses() as m:
        login_ok(m)
        for _ in range(3):
            m.get(CASE, status=503, body="Service Unavailable")
        m.get(CASE, payload={"name": "x"})
        async with make() as client:
            assert await client.get_case("EMG123456789") == {"name": "x"}
        assert client.stats.retries == 3
        assert client.stats.responses == {200: 2, 503: 3}


async def test_503_forever_exhausts_attempts() -> None:
    with aioresponses() as m:
        login_ok(m)
        m.get(CASE, status=503, body="Service Unavailable", repeat=True)
        async with make(retry=RetryPolicy.for_testing(attempts=4)) as client:
            with pytest.raises(RetriesExhausted, match="Service Unavailable") as info:
                await client.get_case("EMG123456789")
        assert info.value.status == 503
        assert calls(m, "GET", CASE) == 4


async def test_500_is_retried_at_most_once() -> None:
    with aioresponses() as m:
        login_ok(m)
        m.get(CASE, status=500, payload={"error": "x"}, repeat=True)
        async with make() as client:
            with pytest.raises(RetriesExhausted, match="status code 500"):
                await client.get_case("EMG123456789")
        assert calls(m, "GET", CASE) == 2


async def test_empty_budget_stops_retrying() -> None:
    budget = RetryBudget(capacity=10, retry_cost=5)
    with aioresponses() as m:
        login_ok(m)
        m.get(CASE, status=502, body="Bad Gateway", repeat=True)
        async with make(retry=RetryPolicy.for_testing(budget=budget)) as client:
            with pytest.raises(RetriesExhausted):
                await client.get_case("EMG123456789")
        assert calls(m, "GET", CASE) == 3  # two paid retries, then the bucket is empty
        assert client.stats.retry_budget_left == 0


async def test_timeout_on_get_is_retried() -> None:
    with aioresponses() as m:
        login_ok(m)
        m.get(CASE, exception=TimeoutError())
        m.get(CASE, payload={"name": "x"})
        async with make() as client:
            await client.get_case("EMG123456789")
        assert client.stats.retries == 1
        assert client.stats.retry_budget_left == 500 - 10 + 1


# --------------------------------------------------------------------------- creates


async def test_create_returns_name() -> None:
    with aioresponses() as m:
        login_ok(m)
        m.post(CREATE, status=201, payload={"Status": "Success", "name": "EMG000000001"})
        async with make() as client:
            assert await client.create_case({"test_data": {}}) == CreateResult("EMG000000001", 201)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"exception": TimeoutError()}, "no answer in time"),
        ({"exception": aiohttp.ServerDisconnectedError()}, "connection closed"),
        ({"exception": aiohttp.ClientPayloadError("cut")}, "connection closed"),
        ({"status": 500, "body": "Internal Server Error"}, "HTTP 500"),
        ({"status": 502, "body": "Bad Gateway"}, "HTTP 502"),
        ({"status": 504, "body": "Gateway Timeout"}, "HTTP 504"),
    ],
)
async def test_create_is_never_resent_after_ambiguous_failure(
    kwargs: dict[str, Any], reason: str
) -> None:
    with aioresponses() as m:
        login_ok(m)
        m.post(CREATE, repeat=True, **kwargs)
        async with make() as client:
            with pytest.raises(AmbiguousCreate, match=reason):
                await client.create_case({"test_data": {}})
        assert calls(m, "POST", CREATE) == 1
        assert client.stats.ambiguous == 1


async def test_create_retried_on_429_and_503() -> None:
    with aioresponses() as m:
        login_ok(m)
        m.post(CREATE, status=429, payload={"message": "Too many requests"})
        m.post(CREATE, status=503, body="Service Unavailable")
        m.post(CREATE, status=201, payload={"name": "EMG000000002"})
        async with make() as client:
            result = await client.create_case({"test_data": {}})
        assert result is not None and result.name == "EMG000000002"
        assert calls(m, "POST", CREATE) == 3


async def test_create_retried_when_connection_refused() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with Client(
        f"http://127.0.0.1:{port}",
        credentials=Credentials(token=TOKEN),
        rate=1000.0,
        retry=RetryPolicy.for_testing(attempts=3),
    ) as client:
        with pytest.raises(RetriesExhausted, match="cannot connect"):
            await client.create_case({"test_data": {}})
    assert client.stats.retries == 2
    assert client.stats.ambiguous == 0


async def test_dry_run_is_retried_on_500_and_returns_none() -> None:
    with aioresponses() as m:
        login_ok(m)
        m.post(DRY_RUN, status=500, body="Internal Server Error")
        m.post(DRY_RUN, status=200, payload={})
        async with make() as client:
            assert await client.create_case({"test_data": {}}, dry_run=True) is None


@pytest.mark.parametrize(
    ("status", "body", "message", "kind"),
    [
        (400, "Gene list 999 does not exist", "Gene list 999 does not exist", PermanentError),
        (400, '{"message": "Invalid phenotype"}', "Invalid phenotype", PermanentError),
        (422, '{"errors": []}', "Request failed with status code 422", PermanentError),
        (404, '{"message": "Test EMG1 not found"}', "Test EMG1 not found", NotFound),
    ],
)
async def test_permanent_errors_keep_the_server_message(
    status: int, body: str, message: str, kind: type[Exception]
) -> None:
    with aioresponses() as m:
        login_ok(m)
        m.post(DRY_RUN, status=status, body=body)
        async with make() as client:
            with pytest.raises(kind) as info:
                await client.create_case({"test_data": {}}, dry_run=True)
        assert str(info.value) == message
        assert calls(m, "POST", DRY_RUN) == 1


async def test_long_messages_are_truncated() -> None:
    with aioresponses() as m:
        login_ok(m)
        m.get(CASE, status=400, body="x" * 5000)
        async with make() as client:
            with pytest.raises(PermanentError) as info:
                await client.get_case("EMG123456789")
        assert len(info.value.message) <= 500


async def test_preset_group_is_not_resent_but_assign_is() -> None:
    preset = f"{HOST}/api/test/EMG1/preset_group"
    assign = f"{HOST}/api/participant/EMG1"
    with aioresponses() as m:
        login_ok(m)
        m.post(preset, exception=TimeoutError())
        m.post(assign, exception=TimeoutError())
        m.post(assign, payload={})
        async with make() as client:
            with pytest.raises(AmbiguousCreate):
                await client.create_preset_group("EMG1", name="p", gene_lists=[(1, "g")])
            await client.assign("EMG1", [7])
        assert calls(m, "POST", preset) == 1
        assert calls(m, "POST", assign) == 2


async def test_rate_limited_without_retry_after_is_typed() -> None:
    with aioresponses() as m:
        login_ok(m)
        m.get(CASE, status=429, body="slow down", repeat=True)
        async with make(retry=RetryPolicy.for_testing(attempts=2)) as client:
            with pytest.raises(RetriesExhausted) as info:
                await client.get_case("EMG123456789")
        assert isinstance(info.value.last, RateLimited)
        assert info.value.last.retry_after is None


# --------------------------------------------------------------------------- typed methods


async def test_user_ids_case_insensitive_and_cached() -> None:
    users = f"{HOST}/api/user/org_users/"
    with aioresponses() as m:
        login_ok(m)
        m.get(
            users, payload={"hits": [{"id": 5, "email": "Ann@Lab.org"}, {"id": 6, "email": "b@x"}]}
        )
        async with make() as client:
            assert await client.user_ids(["ann@lab.org", "B@X"]) == [5, 6]
            with pytest.raises(PermanentError, match="unknown user e-mail\\(s\\): c@d, e@f"):
                await client.user_ids(["c@d", "ann@lab.org", "e@f"])
        assert calls(m, "GET", users) == 1


async def test_list_cases_pages() -> None:
    pattern = re.compile(r"^http://127\.0\.0\.1:9/api/test\?")
    with aioresponses() as m:
        login_ok(m)
        m.get(pattern, payload={"hits": [{"name": "A"}, {"name": "B"}], "total": 3})
        m.get(pattern, payload={"hits": [{"name": "C"}], "total": 3})
        async with make() as client:
            names = [
                c["name"]
                async for c in client.list_cases(
                    status=["finalized", "delivered"], since="2024-01-01", page_size=2
                )
            ]
        assert names == ["A", "B", "C"]
        urls = [str(u) for (meth, u) in m.requests if meth == "GET"]
        assert any("status=delivered&status=finalized" in u and "from=2" in u for u in urls)


async def test_list_dir_pages_and_caches() -> None:
    pattern = re.compile(r"^http://127\.0\.0\.1:9/api/storage/900/fs/list\?")
    first = [{"name": str(i), "alias": f"f{i}"} for i in range(100)]
    with aioresponses() as m:
        login_ok(m)
        m.get(pattern, payload={"resources": first, "has_more": True})
        m.get(pattern, payload={"resources": [{"name": "100", "alias": "f100"}], "has_more": False})
        async with make() as client:
            entries = await client.list_dir(900, "projects/1/biosamples")
            again = await client.list_dir(900, "/projects/1/biosamples/")
        assert len(entries) == 101 and again == entries
        assert calls(m, "GET", pattern) == 2


async def test_storage_failure_is_cached() -> None:
    url = f"{HOST}/api/storage/777"
    with aioresponses() as m:
        login_ok(m)
        m.get(url, status=404, payload={"message": "Storage provider 777 not found"})
        async with make() as client:
            for _ in range(2):
                with pytest.raises(NotFound, match="Storage provider 777 not found"):
                    await client.storage(777)
        assert calls(m, "GET", url) == 1


async def test_find_samples_and_candidates() -> None:
    samples = re.compile(r"^http://127\.0\.0\.1:9/api/sample/\?")
    with aioresponses() as m:
        login_ok(m)
        m.get(samples, payload={"total": 1, "hits": [{"id": 1, "name": "S1", "note": "EMG1"}]})
        m.get(f"{HOST}/api/candidates/EMG1", payload={"hits": [{"gene": "X"}]})
        async with make() as client:
            assert (await client.find_samples("S1"))[0]["note"] == "EMG1"
            assert await client.candidates("EMG1") == [{"gene": "X"}]
        url = next(str(u) for (meth, u) in m.requests if "sample" in str(u))
        assert "query=S1" in url and "sampleType=fastq" in url and "exact_match=true" in url


async def test_download_report_streams_into_the_file(tmp_path: Path) -> None:
    url = f"{HOST}/api/test/v2/EMG1/reports/pdf/3"
    with aioresponses() as m:
        login_ok(m)
        m.get(url, body=b"%PDF-1.4 report")
        async with make() as client:
            with (tmp_path / "EMG1.pdf").open("wb") as out:
                written = await client.download_report("EMG1", "pdf", 3, out)
        assert written == len(b"%PDF-1.4 report")
        assert (tmp_path / "EMG1.pdf").read_bytes() == b"%PDF-1.4 report"


async def test_no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with aioresponses() as m:
        login_ok(m)
        m.get(CASE, status=401, body="no")
        login_ok(m)
        m.get(CASE, payload={})
        async with make() as client:
            await client.get_case("EMG123456789")
    assert TOKEN not in caplog.text and PASSWORD not in caplog.text
