"""The official CLI v36 corpus end to end: `run` and `validate --server` through the real client
against a fresh sandbox loaded with the corpus fixture, one manifest at a time.

For `v` files the create bodies the sandbox received equal the recorded payloads (as JSON
values, in order, one family in flight so case names are given in family order) and the
results file carries the recorded case ids. For `x` files the flagged rows are the recorded
ones: client-side checks from `run` (nothing created), server dry-run errors from
`validate --server`, create failures from `run`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from batch.api import Credentials, RetryPolicy
from batch.errors import ManifestError
from batch.jobs import Connection, Target, run_job, validate_job
from batch.run import RunOptions
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, run_sandbox
from tests.resolver_fake import CONFORMANCE_DIR
from tests.test_conformance import ACCEPTED_ON_PURPOSE, MANIFESTS, _expected, _flagged

FIXTURE = CONFORMANCE_DIR / "fixture.json"
CONNECTION = Connection(concurrency=1, retry=RetryPolicy.for_testing(), rate=1000.0)
#: x files whose rows the server flags (dry run), not the client.
SERVER_FLAGGED = {"x028_server_dry_run_errors"}


async def _cases(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_sandbox/cases") as resp:
        return list((await resp.json())["hits"])


def _case_ids(results: Path) -> list[str]:
    """The non-empty `Case Id` cells of a results file, in row order."""
    import csv

    records = list(csv.reader(results.open(encoding="utf-8", newline="")))
    start = next((i + 1 for i, r in enumerate(records) if r and r[0] == "[Data]"), 0)
    header = records[start]
    if "Case Id" not in header:
        return []
    column = header.index("Case Id")
    return [r[column] for r in records[start + 1:] if len(r) > column and r[column]]


@pytest.mark.slow
@pytest.mark.parametrize("path", MANIFESTS, ids=[p.stem for p in MANIFESTS])
async def test_corpus_through_sandbox(path: Path, tmp_path: Path) -> None:
    """One corpus manifest, as a user would run it against the server."""
    manifest = tmp_path / path.name
    shutil.copy(path, manifest)
    recorded = path.with_name(path.stem + ".results.csv")
    async with run_sandbox(SandboxConfig(fixture=FIXTURE)) as sb:
        target = Target(host=sb.url, credentials=Credentials(username=DEFAULT_USER,
                                                              password=DEFAULT_PASSWORD))
        if not recorded.exists() and path.stem not in ACCEPTED_ON_PURPOSE:
            with pytest.raises(ManifestError):
                await run_job(manifest, target=target, connection=CONNECTION,
                              options=RunOptions(concurrency=1))
            assert await _cases(sb.url) == []
            return
        if path.stem in SERVER_FLAGGED:
            result = await validate_job(manifest, target=target, connection=CONNECTION,
                                        server=True)
            assert result.results is not None
            assert _flagged(result.results) == _flagged(recorded)
            assert await _cases(sb.url) == []
            return
        run = await run_job(manifest, target=target, connection=CONNECTION,
                            options=RunOptions(concurrency=1))
        cases = await _cases(sb.url)
    expected = _expected(path)
    if path.stem in ACCEPTED_ON_PURPOSE:
        assert run.summary.exit_code == 0
        assert run.summary.families > 0
        assert len(cases) == run.summary.created == run.summary.families
        return
    if not expected:  # client-side errors: nothing created, same rows flagged
        assert run.summary.exit_code == 2
        assert cases == []
        assert run.results is not None
        assert _flagged(run.results) == _flagged(recorded)
        return
    created = [e for e in expected if e["case_id"]]
    assert [c["payload"] for c in cases] == [e["payload"] for e in created]
    assert run.results is not None
    assert _case_ids(run.results) == _case_ids(recorded)
    assert _flagged(run.results) == _flagged(recorded)
