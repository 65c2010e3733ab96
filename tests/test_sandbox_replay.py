"""The sandbox, loaded with the conformance fixture, answers exactly as the recording server did."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, run_sandbox
from tests.corpus import CONFORMANCE_DIR

CORPUS = CONFORMANCE_DIR
EXPECTED = sorted(CORPUS.glob("*.expected.jsonl"))
CALLS = sorted(CORPUS.glob("*.calls.jsonl"))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class Client:
    """A logged-in session against one sandbox."""

    def __init__(self, url: str, session: aiohttp.ClientSession, token: str) -> None:
        self.url, self.session = url, session
        self.headers = {"Authorization": f"bearer {token}"}

    async def call(self, method: str, path: str, query: list[list[str]],
                   body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, params=[(k, v) for k, v in query],
                                        json=body, headers=self.headers) as resp:
            text = await resp.text()
            if resp.content_type == "application/json":
                return resp.status, json.loads(text)
            return resp.status, text


@pytest.fixture
async def client(fixture_path: Path) -> AsyncIterator[Client]:
    async with run_sandbox(SandboxConfig(fixture=fixture_path)) as sb, \
            aiohttp.ClientSession() as session:
        login = {"username": DEFAULT_USER, "password": DEFAULT_PASSWORD}
        async with session.post(sb.url + "/api/auth/v2/api_login/", json=login) as resp:
            token = (await resp.json())["access_token"]
        yield Client(sb.url, session, token)


def test_corpus_present() -> None:
    assert len(EXPECTED) >= 40 and len(CALLS) >= 40


@pytest.mark.slow
@pytest.mark.parametrize("path", EXPECTED, ids=lambda p: p.name.split(".")[0])
async def test_recorded_creates_get_recorded_names(client: Client, path: Path) -> None:
    lines = _lines(path)
    for line in lines:
        query = [["dry_run", "true"]]
        status, body = await client.call("POST", "/api/cases/v2/cases", query, line["payload"])
        assert (status, body) == (200, {"Status": "Success"}), line["family_id"]
    for line in lines:
        query = [["dry_run", "false"]]
        status, body = await client.call("POST", "/api/cases/v2/cases", query, line["payload"])
        assert status == line["status"], line["family_id"]
        if line["case_id"] is None:
            assert "name" not in body
        else:
            assert body["name"] == line["case_id"]
            assert body["Status"] == "Success"


def _replayed(call: dict[str, Any]) -> bool:
    path: str = call["path"]
    if call["method"] == "GET":
        return path.startswith(("/api/storage", "/api/sample"))
    return path.startswith("/api/cases/v2/cases") and ["dry_run", "true"] in call["query"]


@pytest.mark.parametrize("path", CALLS, ids=lambda p: p.name.split(".")[0])
async def test_recorded_lookups_and_dry_runs_answer_the_same(client: Client, path: Path) -> None:
    calls = [c for c in _lines(path) if _replayed(c)]
    for call in calls:
        got = await client.call(call["method"], call["path"], call["query"], call["body"])
        want = (call["response"]["status"], call["response"]["body"])
        assert got == want, f"seq {call['seq']} {call['method']} {call['path']}"
