"""A --host without a scheme: https:// is assumed, and a TLS failure says so, with the fix."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web

from batch.errors import UsageError
from tests.transport_server import LOGIN, client, serve, token_answer


async def plain(request: web.Request) -> web.Response:
    return token_answer() if request.path == LOGIN else web.json_response({"name": "EMG1"})


async def test_a_plain_http_server_named_without_a_scheme_is_explained() -> None:
    async with serve(plain) as fake:
        bare = fake.url.removeprefix("http://")
        async with client(bare) as c:
            with pytest.raises(UsageError) as caught:
                await c.get_case("EMG1")
    message = str(caught.value)
    assert "--host has no scheme" in message and f"https://{bare}" in message
    assert f"use --host {fake.url}" in message
    assert fake.seen == []  # the TLS handshake failed: no HTTP request was read


async def test_a_host_with_its_scheme_gets_no_hint() -> None:
    async with serve(plain) as fake, client(fake.url.replace("http://", "https://")) as c:
        with pytest.raises(UsageError) as caught:
            await c.get_case("EMG1")
    assert "scheme" not in str(caught.value)


async def test_the_cli_says_it_in_one_line_with_exit_2(tmp_path: Path) -> None:
    async with serve(plain) as fake:
        bare = fake.url.removeprefix("http://")
        env = {**os.environ, "EMG_TOKEN": "tok-abcdefgh", "EMG_USERNAME": "",
               "EMG_PASSWORD": ""}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "batch", "pull", "info", "--host", bare, "--cases", "EMG1",
            "--out", str(tmp_path / "info.csv"), env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert proc.returncode == 2, err.decode()
    assert "Traceback" not in err.decode()
    assert any("--host has no scheme" in line and fake.url in line for line in lines), lines
