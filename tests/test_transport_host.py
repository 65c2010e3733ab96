"""A --host without a scheme: on loopback (where http:// and https:// are both allowed) it is
refused before anything is sent, saying the scheme is missing; elsewhere https:// is assumed,
and a TLS failure says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from aiohttp import web

from batch.api import normalise_host
from batch.api.http import tls_hint
from batch.errors import UsageError
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, SandboxThread
from tests.transport_server import LOGIN, client, serve, token_answer


async def plain(request: web.Request) -> web.Response:
    return token_answer() if request.path == LOGIN else web.json_response({"name": "EMG1"})


def missing_scheme(bare: str) -> str:
    return f"the host has no scheme: use https://{bare} or, on loopback only, http://{bare}"


@pytest.mark.parametrize("bare", ["127.0.0.1:8791", "localhost:8791", "[::1]:8791",
                                  "127.0.0.2", "localhost"])
def test_a_loopback_host_without_a_scheme_is_refused(bare: str) -> None:
    with pytest.raises(UsageError) as caught:
        normalise_host(bare)
    assert str(caught.value) == missing_scheme(bare)


def test_a_tenant_without_a_scheme_is_https() -> None:
    assert normalise_host("lab.emg.illumina.com") == "https://lab.emg.illumina.com"
    assert tls_hint("lab.emg.illumina.com", "https://lab.emg.illumina.com") == (
        "--host has no scheme, so https://lab.emg.illumina.com was assumed; check that the host "
        "serves HTTPS")
    assert tls_hint("https://lab.emg.illumina.com", "https://lab.emg.illumina.com") is None


async def test_the_client_refuses_it_before_connecting() -> None:
    async with serve(plain) as fake:
        bare = fake.url.removeprefix("http://")
        with pytest.raises(UsageError) as caught:
            async with client(bare) as c:
                await c.get_case("EMG1")
    assert str(caught.value) == missing_scheme(bare)
    assert fake.seen == []


async def test_a_host_with_its_scheme_gets_no_hint() -> None:
    async with serve(plain) as fake, client(fake.url.replace("http://", "https://")) as c:
        with pytest.raises(UsageError) as caught:
            await c.get_case("EMG1")
    assert "scheme" not in str(caught.value)


@pytest.mark.parametrize("command", [
    ["pull", "info", "--cases", "EMG1", "--out", "info.csv"],
    ["run", "m.csv"],
    ["validate", "m.csv", "--server"],
    ["doctor"],
])
@pytest.mark.slow
def test_the_cli_says_the_scheme_is_missing_with_exit_2(
        tmp_path: Path, command: list[str]) -> None:
    """Against a real sandbox on loopback: one message, exit 2, no request, no file."""
    (tmp_path / "m.csv").write_text("Family Id,Case Type,Files Names,Sex\nF1,Exome,a.bam,M\n",
                                    encoding="utf-8")
    with SandboxThread(SandboxConfig()) as sandbox:
        bare = sandbox.url.removeprefix("http://")
        env = {**os.environ, "EMG_USERNAME": DEFAULT_USER, "EMG_PASSWORD": DEFAULT_PASSWORD,
               "EMG_TOKEN": "", "EMG_HOST": ""}
        done = subprocess.run([sys.executable, "-m", "batch", *command, "--host", bare],
                              env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)
        with urllib.request.urlopen(f"{sandbox.url}/_sandbox/stats") as answer:
            seen = json.load(answer)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--host': {missing_scheme(bare)}")
    assert seen == {"requests": {}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]  # no ledger, no results
