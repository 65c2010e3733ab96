"""The run engine against a real sandbox on loopback: creates, actions, resume rules."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from batch.api import Client, Credentials, RetryPolicy
from batch.errors import LedgerError
from batch.ledger import Ledger, State, default_path
from batch.manifest import read_manifest
from batch.run import RunOptions, RunSummary, run_manifest
from batch.run.progress import SilentProgress
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    demo_fixture_path,
    run_sandbox,
)
from tests import ledgers
from tests.ledgers import force_state
from tests.manifests import write_manifest

CREDENTIALS = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)


async def sandbox_cases(url: str) -> list[dict[str, Any]]:
    """Every case the sandbox holds."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_sandbox/cases") as resp:
        return list((await resp.json())["hits"])


async def create_count(url: str) -> int:
    """How many real creates the sandbox answered (any status)."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_sandbox/stats") as resp:
        stats = (await resp.json())["requests"]
    return sum(
        n for key, codes in stats.items() if key.startswith("POST /api/cases/v2/cases")
        for n in codes.values()
    )


async def run_once(
    manifest: Path, url: str, *, ledger: Path | None = None, **options: Any
) -> RunSummary:
    """One run of *manifest* against the sandbox at *url*."""
    parsed = read_manifest(manifest)
    with Ledger.open(ledger or default_path(manifest)) as opened:
        opened.lock()
        async with Client(url, credentials=CREDENTIALS, retry=RetryPolicy.for_testing()) as client:
            return await run_manifest(parsed, client=client, ledger=opened,
                                      options=RunOptions(**options))


@pytest.fixture
async def sandbox_url() -> AsyncIterator[str]:
    """A sandbox with the demo data, cases delivered at once."""
    async with run_sandbox(SandboxConfig(fixture=demo_fixture_path(), advance_after=0)) as sb:
        yield sb.url


async def test_run_creates_every_family_once(tmp_path: Path, sandbox_url: str) -> None:
    """Every family becomes one case; the ledger holds the names the server gave."""
    manifest = write_manifest(tmp_path / "m.csv", 12)
    summary = await run_once(manifest, sandbox_url)
    assert (summary.created, summary.failed, summary.unknown, summary.exit_code) == (12, 0, 0, 0)
    cases = await sandbox_cases(sandbox_url)
    assert len(cases) == 12
    with Ledger.open(default_path(manifest)) as ledger:
        names = {r.family_id: r.case_name for r in ledger.iter_families()}
    by_sample = {c["proband_sample"]: c["name"] for c in cases}
    assert {by_sample[f"{fid}-S0"] for fid in names} == set(names.values())


async def test_rerun_skips_what_succeeded(tmp_path: Path, sandbox_url: str) -> None:
    """Running the same command again creates nothing new."""
    manifest = write_manifest(tmp_path / "m.csv", 5)
    await run_once(manifest, sandbox_url)
    again = await run_once(manifest, sandbox_url)
    assert (again.created, again.skipped, again.exit_code) == (0, 5, 0)
    assert len(await sandbox_cases(sandbox_url)) == 5
    assert await create_count(sandbox_url) == 5


@pytest.mark.slow
async def test_lost_answer_is_adopted_not_recreated(tmp_path: Path) -> None:
    """A create whose answer is lost is looked up and adopted: one case per family."""
    config = SandboxConfig(fixture=demo_fixture_path(), drop_after_commit=1.0)
    async with run_sandbox(config) as sb:
        manifest = write_manifest(tmp_path / "m.csv", 4)
        summary = await run_once(manifest, sb.url)
        assert (summary.adopted, summary.created, summary.unknown) == (4, 0, 0)
        assert len(await sandbox_cases(sb.url)) == 4
        assert await create_count(sb.url) == 4


async def test_sending_create_is_reconciled_before_anything_is_sent(
    tmp_path: Path, sandbox_url: str
) -> None:
    """A create left `sending` by a killed process is adopted when the case exists."""
    manifest = write_manifest(tmp_path / "m.csv", 3)
    await run_once(manifest, sandbox_url)
    with Ledger.open(default_path(manifest)) as ledger:
        force_state(ledger, "FAM-000001", "create", State.SENDING)
        ledger.update_family("FAM-000001", case_name=None)
    summary = await run_once(manifest, sandbox_url)
    assert (summary.adopted, summary.created) == (1, 0)
    assert len(await sandbox_cases(sandbox_url)) == 3


async def test_sending_create_without_a_case_is_created(tmp_path: Path, sandbox_url: str) -> None:
    """A create left `sending` that never reached the server is created once."""
    manifest = write_manifest(tmp_path / "m.csv", 2)
    parsed = read_manifest(manifest)
    with Ledger.open(default_path(manifest)) as ledger:
        ledger.add_families([ledgers.family(f.family_id, i, sample=f.proband_sample,
                                            row_hash=f.row_hash)
                             for i, f in enumerate(parsed.families())])
        ledger.set_step("FAM-000000", "create", State.SENDING, attempt=True)
    summary = await run_once(manifest, sandbox_url)
    assert (summary.created, summary.adopted) == (2, 0)
    assert len(await sandbox_cases(sandbox_url)) == 2


async def test_undecidable_reconcile_needs_review(tmp_path: Path, sandbox_url: str) -> None:
    """A lost create whose proband has no sample name is left unknown, never re-sent."""
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "[Data]\nFamily Id,Case Type,Files Names,Sample Type,BioSample Name,Storage Provider Id,"
        "Relation,Sex,Phenotypes\nP1,Exome,,FASTQ,,,proband,M,Seizure\n",
        encoding="utf-8",
    )
    parsed = read_manifest(manifest)
    family = next(parsed.families())
    with Ledger.open(default_path(manifest)) as ledger:
        ledger.add_families([ledgers.family("P1", 0, sample="", row_hash=family.row_hash)])
        ledger.set_step("P1", "create", State.UNKNOWN, attempt=True)
    summary = await run_once(manifest, sandbox_url)
    assert (summary.unknown, summary.created, summary.exit_code) == (1, 0, 1)
    assert await create_count(sandbox_url) == 0
    with Ledger.open(default_path(manifest)) as ledger:
        step = ledger.family("P1").steps["create"]  # type: ignore[union-attr]
    assert step.state is State.UNKNOWN
    assert "needs review" in (step.error_message or "")


async def test_family_edited_after_create_is_reported(tmp_path: Path, sandbox_url: str) -> None:
    """Editing a created family's rows reports it and creates nothing."""
    manifest = write_manifest(tmp_path / "m.csv", 2)
    await run_once(manifest, sandbox_url)
    text = manifest.read_text(encoding="utf-8").replace("2020-01-02", "2020-01-03", 1)
    manifest.write_text(text, encoding="utf-8")
    summary = await run_once(manifest, sandbox_url)
    assert (summary.changed, summary.created, summary.exit_code) == (1, 0, 0)
    assert len(await sandbox_cases(sandbox_url)) == 2


async def test_foreign_ledger_is_refused(tmp_path: Path, sandbox_url: str) -> None:
    """A ledger that shares no family with the manifest is refused with a way out."""
    first = write_manifest(tmp_path / "a.csv", 2, prefix="A")
    other = write_manifest(tmp_path / "b.csv", 2, prefix="B")
    await run_once(first, sandbox_url)
    with pytest.raises(LedgerError, match=r"another manifest.*--ledger"):
        await run_once(other, sandbox_url, ledger=default_path(first))


async def test_invalid_manifest_sends_nothing(tmp_path: Path, sandbox_url: str) -> None:
    """One invalid family stops the whole run before any create (exit 2)."""
    manifest = write_manifest(tmp_path / "m.csv", 3)
    text = manifest.read_text(encoding="utf-8").replace(",M,", ",X,", 1)
    manifest.write_text(text, encoding="utf-8")
    summary = await run_once(manifest, sandbox_url)
    assert (summary.invalid, summary.exit_code) == (1, 2)
    assert await create_count(sandbox_url) == 0


async def test_skip_invalid_sends_the_valid_families(tmp_path: Path, sandbox_url: str) -> None:
    """--skip-invalid creates the valid families only."""
    manifest = write_manifest(tmp_path / "m.csv", 3)
    text = manifest.read_text(encoding="utf-8").replace(",M,", ",X,", 1)
    manifest.write_text(text, encoding="utf-8")
    summary = await run_once(manifest, sandbox_url, skip_invalid=True)
    assert (summary.created, summary.invalid, summary.exit_code) == (2, 1, 1)
    assert len(await sandbox_cases(sandbox_url)) == 2


@pytest.mark.slow
async def test_max_failures_stops_early(tmp_path: Path, sandbox_url: str) -> None:
    """--max-failures stops taking families (exit 3)."""
    emails = {"Assign To": ["nobody@example.com"] * 30}
    manifest = write_manifest(tmp_path / "m.csv", 30, extra=emails)
    summary = await run_once(manifest, sandbox_url, max_failures=2, concurrency=1)
    assert summary.stopped == "max-failures"
    assert summary.exit_code == 3
    assert summary.failed == 2
    created = len(await sandbox_cases(sandbox_url))
    assert created < 30
    # Creates are marked sending a window ahead; those never sent go back to pending, unsent.
    with Ledger.open(default_path(manifest)) as ledger:
        records = list(ledger.iter_families())
    creates = [r.steps["create"] for r in records]
    assert sum(s.state is State.SUCCEEDED for s in creates) == created
    assert all(s.state in (State.SUCCEEDED, State.PENDING) for s in creates)
    assert all(s.attempts == 0 and s.started_at is None
               for s in creates if s.state is State.PENDING)


async def test_actions_run_after_create(tmp_path: Path, sandbox_url: str) -> None:
    """Assign To, Preset Group and Set Status run after the create, in that order."""
    manifest = write_manifest(
        tmp_path / "m.csv", 2,
        extra={"Assign To": ["geneticist@example.com;analyst@example.com"] * 2,
               "Preset Group": ["Epilepsy plus"] * 2,
               "Preset Gene Lists": ["101:Epilepsy panel;103:Hearing loss panel"] * 2,
               "Set Status": ["custom_status_1"] * 2},
    )
    summary = await run_once(manifest, sandbox_url)
    assert (summary.created, summary.updated, summary.failed) == (2, 2, 0)
    for case in await sandbox_cases(sandbox_url):
        assert case["status"] == "custom_status_1"
        assert {p["id"] for p in case["participants"]} >= {11, 12}
        assert [g["name"] for g in case["preset_groups"]] == ["Epilepsy plus"]


async def test_unknown_email_fails_the_assign_step_only(tmp_path: Path, sandbox_url: str) -> None:
    """An unknown e-mail fails `assign` with its name; the case is kept."""
    manifest = write_manifest(tmp_path / "m.csv", 1, extra={"Assign To": ["who@example.com"]})
    summary = await run_once(manifest, sandbox_url)
    assert (summary.created, summary.failed, summary.exit_code) == (1, 1, 1)
    with Ledger.open(default_path(manifest)) as ledger:
        record = ledger.family("FAM-000000")
    assert record is not None
    assert record.steps["create"].state is State.SUCCEEDED
    assert record.steps["assign"].state is State.FAILED
    assert "who@example.com" in (record.steps["assign"].error_message or "")
    again = await run_once(manifest, sandbox_url)
    assert (again.created, again.failed) == (0, 1)
    assert len(await sandbox_cases(sandbox_url)) == 1


async def test_update_manifest_acts_on_existing_cases(tmp_path: Path, sandbox_url: str) -> None:
    """A manifest of Case Id plus action columns runs only the actions."""
    created = write_manifest(tmp_path / "m.csv", 2)
    await run_once(created, sandbox_url)
    names = [c["name"] for c in await sandbox_cases(sandbox_url)]
    update = tmp_path / "update.csv"
    update.write_text(
        "Case Id,Assign To,Set Status\n"
        + "".join(f"{n},director@example.com,finalized\n" for n in names),
        encoding="utf-8",
    )
    summary = await run_once(update, sandbox_url)
    assert (summary.updated, summary.created, summary.failed) == (2, 0, 0)
    assert {c["status"] for c in await sandbox_cases(sandbox_url)} == {"finalized"}


async def test_preset_group_is_created_once_on_resume(tmp_path: Path, sandbox_url: str) -> None:
    """A preset group whose answer was lost is found on the case, not created twice."""
    manifest = write_manifest(
        tmp_path / "m.csv", 1,
        extra={"Preset Group": ["Extra"], "Preset Gene Lists": ["101:Epilepsy panel"]},
    )
    await run_once(manifest, sandbox_url)
    with Ledger.open(default_path(manifest)) as ledger:
        force_state(ledger, "FAM-000000", "preset_group", State.UNKNOWN)
    summary = await run_once(manifest, sandbox_url)
    assert summary.failed == 0
    (case,) = await sandbox_cases(sandbox_url)
    assert [g["name"] for g in case["preset_groups"]] == ["Extra"]


async def test_dry_run_sends_no_create(tmp_path: Path, sandbox_url: str) -> None:
    """--dry-run validates and plans, and creates nothing."""
    manifest = write_manifest(tmp_path / "m.csv", 4)
    summary = await run_once(manifest, sandbox_url, dry_run=True)
    assert summary.plan == {"create": 4}
    assert await create_count(sandbox_url) == 0


async def test_second_process_on_a_ledger_is_refused(tmp_path: Path) -> None:
    """A locked ledger refuses a second holder with a clear message."""
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as first:
        first.lock()
        with Ledger.open(path) as second, pytest.raises(LedgerError, match="in use by another"):
            second.lock()


async def test_reconcile_uses_the_sample_name_that_was_sent(
    tmp_path: Path, sandbox_url: str
) -> None:
    """A proband renamed while its create is unknown is still found under the name sent."""
    manifest = write_manifest(tmp_path / "m.csv", 1)
    await run_once(manifest, sandbox_url)
    with Ledger.open(default_path(manifest)) as ledger:
        force_state(ledger, "FAM-000000", "create", State.UNKNOWN)
        ledger.update_family("FAM-000000", case_name=None)
    text = manifest.read_text(encoding="utf-8").replace("FAM-000000-S0", "FAM-000000-S0A")
    manifest.write_text(text, encoding="utf-8")
    summary = await run_once(manifest, sandbox_url)
    assert (summary.adopted, summary.created) == (1, 0)
    assert len(await sandbox_cases(sandbox_url)) == 1


async def test_a_case_of_another_family_is_never_adopted(
    tmp_path: Path, sandbox_url: str
) -> None:
    """Two families sharing a pending proband name: a lost create does not take the other's case."""
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "Family Id,Case Type,Files Names,Sample Type,BioSample Name,Relation,Sex,Phenotypes\n"
        "EXOME,Exome,,FASTQ,SHARED-1,proband,M,Seizure\n"
        "GENOME,Whole Genome,,FASTQ,SHARED-1,proband,M,Seizure\n",
        encoding="utf-8",
    )
    summary = await run_once(manifest, sandbox_url)
    assert summary.created == 2
    with Ledger.open(default_path(manifest)) as ledger:
        genome = ledger.family("GENOME")
        assert genome is not None
        force_state(ledger, "GENOME", "create", State.UNKNOWN)
        ledger.update_family("GENOME", case_name=None)
    again = await run_once(manifest, sandbox_url)
    with Ledger.open(default_path(manifest)) as ledger:
        exome, after = ledger.family("EXOME"), ledger.family("GENOME")
    assert exome is not None and after is not None
    assert after.case_name == genome.case_name != exome.case_name
    assert (again.adopted, again.created) == (1, 0)
    assert len(await sandbox_cases(sandbox_url)) == 2


async def test_a_failed_look_up_while_building_fails_that_family_only(
    tmp_path: Path, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API error while building one payload is recorded; the other families go on."""
    import batch.run.identity
    from batch.errors import RetriesExhausted, ServerError

    real = batch.run.identity.build_payload

    async def flaky(family: Any, resolver: Any) -> dict[str, Any]:
        if family.family_id == "FAM-000001":
            raise RetriesExhausted(ServerError("storage look-up: 503", status=503))
        return await real(family, resolver)

    monkeypatch.setattr(batch.run.identity, "build_payload", flaky)
    manifest = write_manifest(tmp_path / "m.csv", 3)
    summary = await run_once(manifest, sandbox_url)
    assert (summary.created, summary.failed, summary.exit_code) == (2, 1, 1)
    with Ledger.open(default_path(manifest)) as ledger:
        step = ledger.family("FAM-000001").steps["create"]  # type: ignore[union-attr]
    assert step.state is State.FAILED
    assert step.attempts == 0  # marked sending ahead of time, never sent
    assert "look-up failed" in (step.error_message or "")


@pytest.mark.slow
async def test_the_run_records_requests_and_429s_over_time(tmp_path: Path) -> None:
    """A sample of the client's counters every timeline step, and one at the end."""
    config = SandboxConfig(fixture=demo_fixture_path(), latency_ms=40)
    async with run_sandbox(config) as sb:
        manifest = write_manifest(tmp_path / "m.csv", 12)
        summary = await run_once(manifest, sb.url, concurrency=2, timeline_step=0.05)
    samples = summary.timeline
    assert len(samples) >= 3
    assert [s[0] for s in samples] == sorted(s[0] for s in samples)
    assert [s[1] for s in samples] == sorted(s[1] for s in samples)
    assert samples[-1][1:] == [summary.requests, summary.rate_limited]
    assert summary.as_dict()["timeline"] == samples


async def test_skip_invalid_never_sends_a_family_that_may_lack_rows(tmp_path: Path,
                                                                    sandbox_url: str) -> None:
    """A row without a Family Id may belong to any family: nothing is sent at all."""
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "Family Id,Case Type,Files Names,Sample Type,BioSample Name,Relation,Sex,Phenotypes\n"
        "F1,Exome,,FASTQ,P1,proband,M,Seizure\n"
        ",,,FASTQ,M1,mother,F,unaffected\n", encoding="utf-8")
    summary = await run_once(manifest, sandbox_url, skip_invalid=True)
    assert (summary.ran, summary.exit_code, summary.created) == (False, 2, 0)
    assert any("without a Family Id" in str(p) for p in summary.problems)
    assert await create_count(sandbox_url) == 0


class _Notes(SilentProgress):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, text: str) -> None:
        self.lines.append(text)


@pytest.mark.parametrize(("minutes", "warned"), [(2, True), (600, False)])
async def test_a_ready_token_that_runs_out_before_the_run_is_said_at_start(
    tmp_path: Path, minutes: int, warned: bool
) -> None:
    from batch.run.runner import Runner
    from tests.transport_server import jwt

    token = jwt(exp=time.time() + minutes * 60)
    client = Client("http://127.0.0.1:9", credentials=Credentials(token=token), rate=10)
    progress = _Notes()
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        runner = Runner(read_manifest(write_manifest(tmp_path / "m.csv", 3)), client=client,
                        ledger=ledger, options=RunOptions(), progress=progress)
        runner._warn_short_token(5000)  # 10,000 requests at 10/s: about 17 minutes
    assert bool(progress.lines) == warned
    assert all("EMG_TOKEN" in line and "EMG_PASSWORD" in line for line in progress.lines)
