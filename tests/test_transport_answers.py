"""What a server says, against real loopback servers that echo secrets, page for ever, send
JSON that is not strict, or refuse a route to a fresh token: no secret is kept or shown, every
listing ends, no lenient read, and a missing role is named as such."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp
import pytest
from aiohttp import web

import batch.api.client
from batch.api import Credentials
from batch.errors import AuthError, Forbidden, ListingError, PermanentError, ResolveError
from batch.ledger import Ledger, default_path
from batch.payload.resolve import ApiResolver
from batch.sandbox import SandboxConfig, demo_fixture_path, run_sandbox
from tests.manifests import write_manifest
from tests.test_client_sandbox import sandbox_json
from tests.test_faults import run_until_done
from tests.transport_server import LOGIN, client, serve, token_answer

REPO = Path(__file__).resolve().parent.parent
#: A password with characters every encoding changes; "SECRET" is in every form of it.
PASSWORD = 'p@ss "w/rd" ü-SECRET'
WHO = Credentials(username="u@example.com", password=PASSWORD)


def echo(body: bytes) -> str:
    """What a validation framework answers: the request quoted, JSON-escaped and URL-encoded."""
    data = json.loads(body)
    return json.dumps({"message": f"invalid input: {json.dumps(data)}; as a query: "
                                  f"password={quote_plus(data['password'])} "
                                  f"path=/x/{quote(data['password'], safe='').lower()}"})


async def echoing_login(request: web.Request) -> web.Response:
    """A login that answers 400 with its input, the password included."""
    if request.path == LOGIN:
        return web.Response(status=400, text=echo(await request.read()),
                            content_type="application/json")
    return web.json_response({"message": "not here"}, status=404)


# ----------------------------------------------------------------------------- secrets


def files_holding(folder: Path, needle: bytes) -> tuple[list[str], list[str]]:
    """The names of the files under *folder*, and of those whose bytes hold *needle*."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return [p.name for p in files], [p.name for p in files if needle in p.read_bytes()]


async def test_a_login_error_echoing_the_password_stops_without_it() -> None:
    async with serve(echoing_login) as fake, client(fake.url, credentials=WHO,
                                                    attempts=3) as c:
        with pytest.raises(AuthError) as caught:
            await c.get_case("EMG1")
        with pytest.raises(AuthError):
            await c.case_info("EMG1")
    text = str(caught.value)
    assert "SECRET" not in text and "<redacted>" in text and "login refused" in text
    assert caught.value.status == 400
    assert fake.count("POST", LOGIN) == 1  # one attempt, then every request stops the same way


async def test_a_refused_request_quoting_the_token_does_not_show_it() -> None:
    token = "tok-SECRET-0123456789"

    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer(token)
        return web.json_response({"message": f"no case for {request.headers['Authorization']}"
                                             f" ({quote(token)})"}, status=400)

    async with serve(handler) as fake, client(fake.url) as c:
        with pytest.raises(PermanentError) as caught:
            await c.get_case("EMG1")
    assert "SECRET" not in str(caught.value) and "<redacted>" in str(caught.value)


@pytest.mark.slow
async def test_a_run_whose_login_echoes_the_password_keeps_it_nowhere(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_bytes((REPO / "inputs" / "example.csv").read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMG_")}
    env.update(EMG_USERNAME="u@example.com", EMG_PASSWORD=PASSWORD, PYTHONPATH=str(REPO))
    async with serve(echoing_login) as fake:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "batch", "run", str(manifest), "--host", fake.url, "--json",
            env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 3, err.decode()
    assert "the server refused the login" in err.decode() + out.decode()
    assert fake.count("POST", LOGIN) == 1
    assert b"SECRET" not in out + err
    written, holding = files_holding(tmp_path, b"SECRET")
    # stopped before sending: no results file, no workbook, no ledger, nothing holding it
    assert "m_results.csv" not in written and holding == []


# ----------------------------------------------------------------------------- 403 and roles


async def test_a_403_that_persists_after_a_fresh_login_names_the_missing_role() -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer(f"tok-{len(fake.seen):08d}")  # a new token each login
        if request.method == "PUT":
            return web.json_response({"message": "Forbidden"}, status=403)
        return web.json_response({"name": "EMG1"})

    async with serve(handler) as fake, client(fake.url) as c:
        await c.get_case("EMG1")  # the token works
        with pytest.raises(Forbidden) as caught:
            await c.set_status("EMG1", "finalized")
        await c.get_case("EMG1")  # the client goes on: one route is refused, not the account
    text = str(caught.value)
    assert "lacks the role for PUT /api/test/EMG1" in text and "IAM" in text
    assert "authentication" not in text and caught.value.status == 403
    assert fake.count("POST", LOGIN) == 2  # one re-login, then the 403 is believed
    assert fake.count("PUT") == 2


async def test_a_run_without_the_role_to_set_statuses_fails_that_step_only(
        tmp_path: Path) -> None:
    """A proxy in front of the sandbox refuses every status change with 403, as a tenant
    does to an account without that scope: the cases are created, the step fails, naming
    the route; the run is not stopped as if the login had failed."""
    extra = {"Set Status": ["custom_status_1"] * 3}
    manifest = write_manifest(tmp_path / "m.csv", 3, extra=extra)
    async with run_sandbox(SandboxConfig(fixture=demo_fixture_path())) as sb, \
            aiohttp.ClientSession() as session:
        async def proxy(request: web.Request) -> web.Response:
            if request.method == "PUT" and request.path.startswith("/api/test/"):
                return web.json_response({"message": "Forbidden"}, status=403)
            async with session.request(request.method, sb.url + request.path_qs,
                                       data=await request.read(),
                                       headers={k: v for k, v in request.headers.items()
                                                if k.lower() != "host"}) as resp:
                return web.Response(status=resp.status, body=await resp.read(),
                                    content_type=resp.content_type)

        async with serve(proxy) as fake:
            (summary,) = await run_until_done(manifest, fake.url, runs=1)
        cases = await sandbox_json(sb.url, "/_sandbox/cases")
    assert cases["total"] == 3 and summary.stopped is None and summary.exit_code == 1
    assert summary.failed == 3
    with Ledger.open(default_path(manifest)) as ledger:
        errors = [s.error_message for f in ledger.iter_families() for s in f.steps.values()
                  if s.step == "set_status"]
    assert len(errors) == 3 and all("lacks the role for PUT /api/test/EMG" in (e or "")
                                    for e in errors), errors
    # a re-login at most per refused request (shared by those refused at once), no more
    assert fake.count("POST", LOGIN) <= 1 + 3 and fake.count("PUT") == 2 * 3


async def test_a_401_after_a_fresh_login_is_still_an_authentication_stop() -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer()
        return web.json_response({"message": "Unauthorized"}, status=401)

    async with serve(handler) as fake, client(fake.url) as c:
        with pytest.raises(AuthError):
            await c.get_case("EMG1")
    assert fake.count("POST", LOGIN) == 2


# ----------------------------------------------------------------------------- listings


def hit(n: int) -> dict[str, Any]:
    return {"name": f"EMG{n:09d}", "status": "finalized"}


async def listing(url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with client(url) as c:
            return [h async for h in c.list_cases(status=("finalized",), page_size=10)]
    return await asyncio.wait_for(read(), 30)  # an endless listing fails, never hangs


async def test_a_listing_answering_the_same_full_page_for_ever_stops() -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer()
        return web.json_response({"hits": [hit(n) for n in range(10)]})

    async with serve(handler) as fake:
        with pytest.raises(ListingError, match="repeats an earlier page"):
            await listing(fake.url)
    assert fake.count("GET") == 2


async def test_a_listing_whose_total_keeps_growing_stops() -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer()
        start = int(request.query["from"])
        return web.json_response({"hits": [hit(start + n) for n in range(10)],
                                  "total": start + 20})

    async with serve(handler) as fake:
        with pytest.raises(ListingError, match="total changed from 20 to 30"):
            await listing(fake.url)
    assert fake.count("GET") == 2


async def test_a_listing_of_new_pages_for_ever_stops_at_the_cap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch.api.client, "MAX_OFFSET", 50)

    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer()
        start = int(request.query["from"])
        return web.json_response({"hits": [hit(start + n) for n in range(10)]})

    async with serve(handler) as fake:
        with pytest.raises(ListingError, match="past 50 entries"):
            await listing(fake.url)
    assert fake.count("GET") == 7  # offsets 0 to 60: the first past the cap stops it


async def test_a_directory_listing_with_more_for_ever_stops() -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer()
        return web.json_response({"resources": [{"name": "1", "alias": "a"}], "has_more": True})

    async with serve(handler) as fake, client(fake.url) as c:
        with pytest.raises(ResolveError, match="does not end"):
            await asyncio.wait_for(ApiResolver(c).list_dir(900, "/projects"), 30)
    assert fake.count("GET") == 2


@pytest.mark.slow
async def test_pull_finalized_against_an_endless_listing_stops_with_a_clear_error(
        tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer()
        return web.json_response({"hits": [hit(n) for n in range(100)], "total": 10**9})

    env = {k: v for k, v in os.environ.items() if not k.startswith("EMG_")}
    env.update(EMG_TOKEN="tok-abcdefgh", PYTHONPATH=str(REPO))
    async with serve(handler) as fake:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "batch", "pull", "finalized", "--host", fake.url,
            "--out", str(tmp_path / "out"), env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 3, err.decode()
    assert "does not end" in err.decode() and "Traceback" not in err.decode()
    assert fake.count("GET") == 2


# ----------------------------------------------------------------------------- strict JSON


def answering(body: bytes, status: int = 200) -> Any:
    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer()
        return web.Response(body=body, status=status, content_type="application/json")
    return handler


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"name": "EMG1", "size": NaN}',
    b'{"name": "EMG1", "size": Infinity}',
    b'{"hits": [{"name": "EMG\xff000001"}]}',
], ids=["deep", "nan", "infinity", "bad-utf8"])
async def test_answers_that_are_not_strict_json_are_refused(body: bytes) -> None:
    async with serve(answering(body)) as fake, client(fake.url) as c:
        with pytest.raises(PermanentError, match="not strict JSON"):
            await c.get_case("EMG1")
        with pytest.raises(PermanentError, match="not strict JSON"):
            [h async for h in c.list_cases(status=("finalized",))]


async def test_a_deeply_nested_error_answer_is_read_as_text() -> None:
    async with serve(answering(b"[" * 8000, status=400)) as fake, client(fake.url) as c:
        with pytest.raises(PermanentError) as caught:
            await c.get_case("EMG1")
    assert caught.value.status == 400 and caught.value.message.startswith("[[[")
