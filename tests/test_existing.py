"""No duplicate without the ledger: a family's case already on the server is found before its
first create, by its proband's sample and its content (against a real sandbox on loopback)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from batch.api import Client, Credentials, RetryPolicy
from batch.ledger import Ledger, State, default_path
from batch.manifest import read_manifest
from batch.outputs import problem_message
from batch.payload import ApiResolver, build_payload
from batch.run import RunOptions, RunSummary, run_manifest
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    demo_fixture_path,
    run_sandbox,
)
from tests.ledgers import force_state
from tests.manifests import write_manifest

CREDENTIALS = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
HEADER = "Family Id,Case Type,Files Names,Sample Type,BioSample Name,Relation,Sex,Phenotypes\n"


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with run_sandbox(SandboxConfig(fixture=demo_fixture_path(), advance_after=0)) as sb:
        yield sb.url


async def sandbox(url: str, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url + path) as resp:
        return await resp.json()


async def run(manifest: Path, url: str, *, ledger: Path | None = None,
              **options: Any) -> RunSummary:
    with Ledger.open(ledger or default_path(manifest)) as opened:
        async with Client(url, credentials=CREDENTIALS, retry=RetryPolicy.for_testing()) as client:
            return await run_manifest(read_manifest(manifest), client=client, ledger=opened,
                                      options=RunOptions(**options))


def requests(stats: Any, route: str) -> int:
    return sum(stats["requests"].get(route, {}).values())


async def test_a_lost_ledger_creates_nothing_twice(tmp_path: Path, url: str) -> None:
    """The cases exist; the ledger is gone: by default each family stops, saying why."""
    manifest = write_manifest(tmp_path / "m.csv", 4)
    first = await run(manifest, url)
    assert first.created == 4
    default_path(manifest).unlink()
    again = await run(manifest, url)
    assert (again.created, again.failed, again.exit_code) == (0, 4, 1)
    assert len((await sandbox(url, "/_sandbox/cases"))["hits"]) == 4
    with Ledger.open(default_path(manifest)) as ledger:
        record = ledger.family("FAM-000000")
    assert record is not None and record.create is not None
    assert record.create.state is State.FAILED and record.create.attempts == 0
    message = problem_message(record) or ""
    assert "already exists on the server" in message and "--if-exists adopt" in message


async def test_if_exists_adopt_takes_the_cases_over_and_runs_their_steps(
    tmp_path: Path, url: str
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 3)
    await run(manifest, url)
    with_actions = write_manifest(tmp_path / "m.csv", 3,
                                  extra={"Assign To": ["analyst@example.com"] * 3})
    default_path(manifest).unlink()
    again = await run(with_actions, url, if_exists="adopt")
    assert (again.adopted, again.created, again.updated, again.exit_code) == (3, 0, 3, 0)
    cases = (await sandbox(url, "/_sandbox/cases"))["hits"]
    assert len(cases) == 3
    assert all(12 in {p["id"] for p in c["participants"]} for c in cases)


async def test_if_exists_create_skips_the_look_ups(tmp_path: Path, url: str) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 2)
    await run(manifest, url, if_exists="create")
    default_path(manifest).unlink()
    again = await run(manifest, url, if_exists="create")
    assert again.created == 2
    stats = await sandbox(url, "/_sandbox/stats")
    assert requests(stats, "GET /api/sample") == 0
    assert len((await sandbox(url, "/_sandbox/cases"))["hits"]) == 4


async def test_a_reanalysis_of_the_same_sample_blocks_nothing(tmp_path: Path, url: str) -> None:
    """The same proband sample in a case of other content (an exome, now a genome) is created."""
    exome = tmp_path / "exome.csv"
    exome.write_text(HEADER + "F1,Exome,,FASTQ,REUSED-1,proband,M,Seizure\n", encoding="utf-8")
    genome = tmp_path / "genome.csv"
    genome.write_text(HEADER + "F1,Whole Genome,,FASTQ,REUSED-1,proband,M,Seizure\n",
                      encoding="utf-8")
    assert (await run(exome, url)).created == 1
    assert (await run(genome, url)).created == 1
    assert (await run(tmp_path / "exome.csv", url, ledger=tmp_path / "new.sqlite")).created == 0


async def test_two_matching_cases_need_review_and_nothing_is_sent(tmp_path: Path,
                                                                  url: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + "F1,Exome,,FASTQ,TWICE-1,proband,M,Seizure\n", encoding="utf-8")
    await run(manifest, url, ledger=tmp_path / "a.sqlite")
    await run(manifest, url, ledger=tmp_path / "b.sqlite", if_exists="create")
    summary = await run(manifest, url, ledger=tmp_path / "c.sqlite")
    assert (summary.failed, summary.created) == (1, 0)
    with Ledger.open(tmp_path / "c.sqlite") as ledger:
        record = ledger.family("F1")
    assert record is not None
    assert "needs review" in (problem_message(record) or "")
    assert len((await sandbox(url, "/_sandbox/cases"))["hits"]) == 2


async def test_shared_proband_samples_are_accepted_with_a_warning(tmp_path: Path,
                                                                  url: str) -> None:
    """One sample analysed as an exome and as a panel: both created, payloads as built."""
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + "EXOME,Exome,,FASTQ,SHARED-9,proband,M,Seizure\n"
                        "PANEL,Custom Panel,,FASTQ,SHARED-9,proband,M,Seizure\n",
                        encoding="utf-8")
    summary = await run(manifest, url)
    assert (summary.created, summary.exit_code) == (2, 0)
    assert any("also used in family EXOME" in str(p) and p.severity == "warning"
               for p in summary.problems)
    cases = {c["payload"]["test_data"]["type"]: c["payload"]
             for c in (await sandbox(url, "/_sandbox/cases"))["hits"]}
    parsed = read_manifest(manifest)
    async with Client(url, credentials=CREDENTIALS) as client:
        resolver = ApiResolver(client)
        for family in parsed.families():
            built = await build_payload(family, resolver)
            assert json.dumps(cases[built["test_data"]["type"]], sort_keys=True) == \
                json.dumps(built, sort_keys=True)


async def test_twins_that_cannot_be_told_apart_need_review(tmp_path: Path, url: str) -> None:
    """Two families of the same sample and content, both creates uncertain: whose case the
    server holds cannot be known, so nothing is adopted and nothing is sent."""
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + "A,Exome,,FASTQ,TWIN-1,proband,M,Seizure\n"
                        "B,Exome,,FASTQ,TWIN-1,proband,M,Seizure\n", encoding="utf-8")
    assert (await run(manifest, url, if_exists="create")).created == 2
    with Ledger.open(default_path(manifest)) as ledger:
        for fid in ("A", "B"):
            force_state(ledger, fid, "create", State.UNKNOWN)
            ledger.update_family(fid, case_name=None)
    again = await run(manifest, url)
    assert (again.adopted, again.created, again.unknown) == (0, 0, 2)
    with Ledger.open(default_path(manifest)) as ledger:
        record = ledger.family("A")
    assert record is not None and "cannot be told apart" in (problem_message(record) or "")
    assert len((await sandbox(url, "/_sandbox/cases"))["hits"]) == 2
