"""Every answer field the client reads is in the provenance table, confirmed or inferred, with
its fallback; the confirmed case-object fields are on the real case object.

The reads are recorded, not guessed: answers are decoded into dictionaries that note each key
asked for, while the client runs its flows (create with actions, a lost create reconciled, the
pull commands) against a sandbox on loopback.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import batch.api.pipeline
from batch.api import Client, Credentials, RetryPolicy
from batch.jobs import Connection, Target, doctor_job, run_job
from batch.pull import (
    FinalizedOptions,
    pull_candidates,
    pull_finalized,
    pull_info,
    pull_samples,
)
from batch.run import RunOptions
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    demo_fixture_path,
    run_sandbox,
)
from tests.corpus import REAL_RESPONSES
from tests.provenance import FIELDS

REPO = Path(__file__).resolve().parent.parent
CREDENTIALS = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
ROUTES = [
    (re.compile(r"^/api/test/v2/[^/]+/reports/?$"), "/api/test/v2/{case}/reports"),
    (re.compile(r"^/api/test/[^/]+/info$"), "/api/test/{case}/info"),
    (re.compile(r"^/api/test/[^/]+/preset_group$"), "/api/test/{case}/preset_group"),
    (re.compile(r"^/api/test/[^/]+/$"), "/api/test/{case}/"),
    (re.compile(r"^/api/candidates/[^/]+$"), "/api/candidates/{case}"),
    (re.compile(r"^/api/participant/[^/]+$"), "/api/participant/{case}"),
    (re.compile(r"^/api/storage/\d+/fs/list$"), "/api/storage/{id}/fs/list"),
    (re.compile(r"^/api/storage/\d+$"), "/api/storage/{id}"),
]


def route(method: str, path: str) -> str:
    """The table's name of a request: its method and path pattern."""
    for pattern, name in ROUTES:
        if pattern.match(path):
            return f"{method} {name}"
    return f"{method} {path}"


class Tracked(dict[str, Any]):
    """A decoded JSON object that records the keys read from it."""

    def __init__(self, data: dict[str, Any], route: str, prefix: str,
                 seen: set[tuple[str, str]]) -> None:
        super().__init__({k: wrap(v, route, f"{prefix}{k}", seen) for k, v in data.items()})
        self._route, self._prefix, self._seen = route, prefix, seen

    def _see(self, key: object) -> None:
        self._seen.add((self._route, f"{self._prefix}{key}"))

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self._see(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self._see(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._see(key)
        return super().__contains__(key)

    def items(self) -> Any:
        self._see("*")
        return super().items()


def wrap(value: Any, route: str, prefix: str, seen: set[tuple[str, str]]) -> Any:
    if isinstance(value, dict):
        return Tracked(value, route, f"{prefix}." if prefix else "", seen)
    if isinstance(value, list):
        return [wrap(v, route, f"{prefix}[]", seen) for v in value]
    return value


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[tuple[str, str]]]:
    found: set[tuple[str, str]] = set()
    real = batch.api.pipeline.decode

    def tracking(raw: bytes, *, method: str, path: str) -> Any:
        return wrap(real(raw, method=method, path=path), route(method, path), "", found)

    monkeypatch.setattr(batch.api.pipeline, "decode", tracking)
    yield found


async def _finalize(url: str, cases: list[str]) -> None:
    async with aiohttp.ClientSession() as session:
        for case in cases:
            async with session.post(f"{url}/_sandbox/advance",
                                    json={"case": case, "status": "finalized"}) as resp:
                assert resp.status == 200


async def _flows(tmp_path: Path) -> None:
    """What the client does for a user: runs with actions, a reconcile, the pulls."""
    config = SandboxConfig(fixture=demo_fixture_path(), advance_after=0)
    target_options = {"connection": Connection(retry=RetryPolicy.for_testing())}
    async with run_sandbox(config) as sb:
        target = Target(host=sb.url, credentials=CREDENTIALS)
        for name in ("example.csv", "walkthrough.csv"):
            shutil.copy(REPO / "inputs" / name, tmp_path / name)
            await run_job(tmp_path / name, target=target, options=RunOptions(),
                          **target_options)
        async with Client(sb.url, credentials=CREDENTIALS,
                          retry=RetryPolicy.for_testing()) as client:
            names = [h["name"] async for h in client.list_cases(status=("delivered",))]
            await _finalize(sb.url, names[:2])
            await pull_finalized(client, FinalizedOptions(out=tmp_path / "reports"))
            await pull_info(client, names)
            await pull_candidates(client, names)
            await pull_samples(client, ["PB-0001", "NOT-A-SAMPLE"])
    lossy = SandboxConfig(fixture=demo_fixture_path(), drop_after_commit=1.0)
    async with run_sandbox(lossy) as sb:
        shutil.copy(REPO / "inputs" / "example.csv", tmp_path / "lost.csv")
        await doctor_job(Target(host=sb.url, credentials=CREDENTIALS))
        await run_job(tmp_path / "lost.csv", target=Target(host=sb.url, credentials=CREDENTIALS),
                      options=RunOptions(settle=0.0), **target_options)


@pytest.mark.slow
async def test_every_field_the_client_reads_is_in_the_table(
    tmp_path: Path, seen: set[tuple[str, str]]
) -> None:
    await _flows(tmp_path)
    table = {(f.route, f.path) for f in FIELDS}
    assert seen, "no answer field was read: the recording does not work"
    missing = sorted(seen - table)
    assert missing == [], "\n".join(map(str, missing))


def test_every_entry_says_how_it_is_known_and_what_happens_without_it() -> None:
    assert len({(f.route, f.path) for f in FIELDS}) == len(FIELDS)
    for field in FIELDS:
        assert field.known in ("confirmed", "inferred") and field.source and field.fallback


def test_confirmed_case_object_fields_are_on_the_real_case_object() -> None:
    import json

    real = json.loads((REAL_RESPONSES / "get-case-finalized-trio.json").read_text())
    for field in FIELDS:
        if field.route == "GET /api/test/{case}/" and field.source.startswith("real"):
            node: Any = real
            for part in field.path.split("."):
                key = part.removesuffix("[]")
                assert isinstance(node, dict) and key in node, field.path
                node = node[key]
                if part.endswith("[]"):
                    assert isinstance(node, list) and node, field.path
                    node = node[0]
