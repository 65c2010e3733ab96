"""Redirects against real loopback servers: the password and patient data go to the configured
host only; a same-origin GET redirect is followed, anything else is refused by name."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web

from batch.errors import AuthError, RedirectRefused
from tests.transport_server import (
    LOGIN,
    PASSWORD,
    TLS,
    Fake,
    Handler,
    client,
    serve,
    token_answer,
)

REPO = Path(__file__).resolve().parent.parent
PAYLOAD = {"caseType": "Exome", "patients": {"proband": {"name": "Jane Doe"}}}


async def steal(request: web.Request) -> web.Response:
    """The other host: it would take anything it is sent, and hand out a token."""
    return token_answer("stolen-token-000")


def redirecting(status: int, location: str, *, route: str, method: str = "POST") -> Handler:
    """A server that answers *method* *route* with a redirect to *location*."""
    async def handler(request: web.Request) -> web.Response:
        if request.path == route and request.method == method:
            return web.Response(status=status, headers={"Location": location})
        if request.path == LOGIN:
            return token_answer()
        return web.json_response({"name": "EMG1", "status": "finalized"})
    return handler


@pytest.mark.parametrize("status", [307, 308])
async def test_a_login_redirected_to_another_host_sends_nothing_there(status: int) -> None:
    async with serve(steal, host="127.0.0.2") as other:
        handler = redirecting(status, f"{other.url}/steal", route=LOGIN)
        async with serve(handler) as main, client(main.url) as c:
            with pytest.raises(AuthError) as caught:
                await c.get_case("EMG1")
    assert other.count() == 0  # neither the password nor anything else reached it
    assert main.count("POST", LOGIN) == 1
    assert main.count("GET") == 0  # nothing was sent without a token
    message = str(caught.value)
    assert "127.0.0.2" in message and "not followed" in message
    assert PASSWORD not in message and "stolen" not in message


@pytest.mark.parametrize("status", [307, 308])
async def test_a_create_redirected_to_another_host_is_refused(status: int) -> None:
    create = "/api/cases/v2/cases"
    async with serve(steal, host="127.0.0.2") as other:
        handler = redirecting(status, f"{other.url}/api/cases/v2/cases?dry_run=false",
                              route=create)
        async with serve(handler) as main, client(main.url, attempts=3) as c:
            with pytest.raises(RedirectRefused) as caught:
                await c.create_case(PAYLOAD)
    assert other.count() == 0  # the patient data never left for the other host
    assert main.count("POST", f"{create}?dry_run=false") == 1  # and was not re-sent
    assert caught.value.status == status
    assert "127.0.0.2" in caught.value.location
    assert "dry_run" not in str(caught.value)  # the Location is named without its query


async def test_a_put_redirected_to_the_same_host_is_not_re_sent() -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer()
        return web.Response(status=307, headers={"Location": "/api/test/EMG2"})

    async with serve(handler) as main, client(main.url) as c:
        with pytest.raises(RedirectRefused, match="a PUT is never re-sent"):
            await c.set_status("EMG1", "finalized")
    assert main.count("PUT") == 1


async def test_a_get_redirect_on_the_same_origin_is_followed_with_the_token() -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer("tok-first-123456")
        if request.path == "/api/test/EMG1/":
            return web.Response(status=301, headers={"Location": "/api/test/v3/EMG1/"})
        return web.json_response({"name": "EMG1", "via": request.path})

    async with serve(handler) as main, client(main.url) as c:
        case = await c.get_case("EMG1")
    assert case == {"name": "EMG1", "via": "/api/test/v3/EMG1/"}
    followed = [s for s in main.seen if s.path == "/api/test/v3/EMG1/"]
    assert followed and followed[0].headers["Authorization"] == "Bearer tok-first-123456"


async def test_a_redirect_loop_stops_after_a_few_hops() -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer()
        return web.Response(status=302, headers={"Location": request.path + "x/"})

    async with serve(handler) as main, client(main.url) as c:
        with pytest.raises(RedirectRefused, match="more than 3 redirects"):
            await c.get_case("EMG1")
    assert main.count("GET") == 4


async def test_a_get_redirect_to_another_port_of_the_same_host_is_refused() -> None:
    async with serve(steal) as other:
        handler = redirecting(302, f"{other.url}/x?token=abc", route="/api/test/EMG1/",
                              method="GET")
        async with serve(handler) as main, client(main.url) as c:
            with pytest.raises(RedirectRefused, match="leads away") as caught:
                await c.get_case("EMG1")
    assert other.count() == 0
    assert "abc" not in str(caught.value)


async def test_a_redirect_without_a_location_is_refused() -> None:
    async def handler(request: web.Request) -> web.Response:
        return token_answer() if request.path == LOGIN else web.Response(status=302)

    async with serve(handler) as main, client(main.url) as c:
        with pytest.raises(RedirectRefused, match="without a Location"):
            await c.get_case("EMG1")


_PROBE = """
import asyncio, sys
from batch.api import Client, Credentials, RetryPolicy
from batch.errors import RedirectRefused

async def main():
    token = Credentials(token="tok-probe-12345678")
    async with Client(sys.argv[1], credentials=token,
                      retry=RetryPolicy.for_testing(attempts=1)) as c:
        print("info", (await c.case_info("EMG1"))["name"])
        try:
            await c.get_case("EMG1")
        except RedirectRefused as exc:
            print("refused", exc)
        else:
            print("followed")

asyncio.run(main())
"""


async def _probe(url: str) -> str:
    """Run a client in a process that trusts the test certificate (``SSL_CERT_FILE``)."""
    env = {**os.environ, "SSL_CERT_FILE": str(TLS / "cert.pem"), "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PROBE, url, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_https_to_http_is_refused(tmp_path: Path) -> None:
    plain: Fake
    async with serve(steal) as plain:
        async def handler(request: web.Request) -> web.Response:
            if request.path == "/api/test/EMG1/":
                return web.Response(status=302, headers={"Location": f"{plain.url}/api/x/"})
            return web.json_response({"name": "EMG1"})

        async with serve(handler, tls=True) as secure:
            assert secure.url.startswith("https://127.0.0.1:")
            out = await _probe(secure.url)
    assert "info EMG1" in out  # TLS to the fake server works: the refusal below is real
    assert "refused" in out and "leaves HTTPS" in out, out
    assert plain.count() == 0
