"""``emg-batch revert`` against a sandbox thread: the plan, the question, the refusals, what is
sent (the sandbox's own request counts), reruns, and a later ``run`` of the reverted families."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner, Result

from batch.api import Client, Credentials
from batch.cli import main
from batch.cli import revert as revert_cli
from batch.ledger import Ledger, Outcome, State
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    SandboxThread,
    demo_fixture_path,
)
from batch.sandbox import cases as sandbox_api
from tests.cli_sandbox import api_requests, invoke
from tests.manifests import write_manifest
from tests.provenance import SANDBOX

PUT = "PUT /api/test/{case}"
INFO = "GET /api/test/{case}/info"


@pytest.fixture
def sandbox() -> Iterator[SandboxThread]:
    """A sandbox whose cases stay where a create leaves them (uploading)."""
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path())) as running:
        yield running


def cli(sandbox: SandboxThread, *args: str, answer: str | None = None) -> Result:
    if answer is None:
        return invoke(*args, url=sandbox.url)
    env = {"EMG_USERNAME": DEFAULT_USER, "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": "",
           "EMG_HOST": sandbox.url}
    return CliRunner().invoke(main, list(args), env=env, input=answer, catch_exceptions=False)


def imported(sandbox: SandboxThread, tmp_path: Path, families: int = 3, **extra: list[str]
             ) -> Path:
    manifest = write_manifest(tmp_path / "cases.csv", families,
                              extra={k.replace("_", " ").title(): v for k, v in extra.items()})
    result = cli(sandbox, "run", str(manifest), "-q")
    assert result.exit_code == 0, result.stderr
    return manifest


def statuses(sandbox: SandboxThread) -> dict[str, str]:
    with urllib.request.urlopen(f"{sandbox.url}/_sandbox/cases", timeout=10) as answer:
        return {c["name"]: c["status"] for c in json.load(answer)["hits"]}


def force(sandbox: SandboxThread, case: str, status: str) -> None:
    request = urllib.request.Request(
        f"{sandbox.url}/_sandbox/advance", method="POST",
        data=json.dumps({"case": case, "status": status}).encode(),
        headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def count(sandbox: SandboxThread, route: str) -> int:
    answers = api_requests(sandbox).get(route, {})
    assert isinstance(answers, dict)
    return sum(int(n) for n in answers.values())


def ledger_of(manifest: Path) -> Path:
    return manifest.with_name(f"{manifest.stem}.ledger.sqlite")


def revert_steps(manifest: Path) -> dict[str, str]:
    with sqlite3.connect(ledger_of(manifest)) as conn:
        rows = conn.execute("SELECT family_id, state FROM steps WHERE step = 'revert'")
        return dict(rows.fetchall())


PLAN3 = [
    "revert: 3 cases created by every run of this ledger (run 1)",
    "to the trash: 3 cases",
    "  FAM-000000  EMG100000001  uploading",
    "  FAM-000001  EMG100000002  uploading",
    "  FAM-000002  EMG100000003  uploading",
]


def test_dry_run_shows_the_plan_and_sends_nothing(sandbox: SandboxThread,
                                                  tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path)
    result = cli(sandbox, "revert", str(manifest), "--dry-run")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr.splitlines() == [
        *PLAN3, "dry run: nothing was sent (3 cases would be moved to the trash)"]
    assert count(sandbox, PUT) == 0 and count(sandbox, INFO) == 3
    assert revert_steps(manifest) == {}


def test_revert_moves_the_run_s_cases_to_the_trash(sandbox: SandboxThread,
                                                   tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path)
    result = cli(sandbox, "revert", str(manifest), "--yes")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr.splitlines() == [*PLAN3, "moved 3 cases to the trash"]
    assert set(statuses(sandbox).values()) == {"trash"}
    assert count(sandbox, PUT) == 3
    assert revert_steps(manifest) == dict.fromkeys(
        ["FAM-000000", "FAM-000001", "FAM-000002"], "succeeded")


def test_a_rerun_sends_nothing_twice(sandbox: SandboxThread, tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path)
    assert cli(sandbox, "revert", str(manifest), "--yes").exit_code == 0
    before = api_requests(sandbox)
    again = cli(sandbox, "revert", str(manifest), "--yes")
    assert again.exit_code == 0
    assert again.stderr.splitlines() == [
        "revert: 3 cases created by every run of this ledger (run 1)",
        "reverted before: 3 cases (nothing to send)",
        "nothing was sent: no case to move to the trash"]
    assert api_requests(sandbox) == before  # not a request, not even a read
    assert count(sandbox, PUT) == 3


def test_only_some_families(sandbox: SandboxThread, tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path)
    result = cli(sandbox, "revert", str(manifest), "--only", "FAM-000002,FAM-000000", "--yes")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "revert: 2 cases created by every run of this ledger (run 1)",
        "to the trash: 2 cases",
        "  FAM-000000  EMG100000001  uploading",
        "  FAM-000002  EMG100000003  uploading",
        "moved 2 cases to the trash"]
    assert statuses(sandbox) == {"EMG100000001": "trash", "EMG100000002": "uploading",
                                 "EMG100000003": "trash"}
    unknown = cli(sandbox, "revert", str(manifest), "--only", "NOPE", "--yes")
    assert unknown.exit_code == 2
    assert unknown.stderr.endswith(
        f"Error: --only: not in ledger {ledger_of(manifest)}: NOPE\n")


def test_run_selects_one_run_s_creates(sandbox: SandboxThread, tmp_path: Path) -> None:
    first = write_manifest(tmp_path / "cases.csv", 2)
    assert cli(sandbox, "run", str(first), "-q").exit_code == 0
    write_manifest(tmp_path / "cases.csv", 3)  # one family more: run 2 creates it
    assert cli(sandbox, "run", str(first), "-q").exit_code == 0
    result = cli(sandbox, "revert", str(first), "--run", "2", "--yes")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "revert: 1 case created by run 2", "to the trash: 1 case",
        "  FAM-000002  EMG100000003  uploading", "moved 1 case to the trash"]
    wrong = cli(sandbox, "revert", str(first), "--run", "3", "--yes")
    assert wrong.exit_code == 2
    assert wrong.stderr == (f"Error: --run 3: that run created no case in ledger "
                            f"{ledger_of(first)} (runs that did: 1, 2)\n")


def test_a_case_moved_on_is_left_alone_unless_asked(sandbox: SandboxThread,
                                                    tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path, 2)
    force(sandbox, "EMG100000002", "finalized")
    result = cli(sandbox, "revert", str(manifest), "--yes")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "revert: 2 cases created by every run of this ledger (run 1)",
        "to the trash: 1 case",
        "  FAM-000000  EMG100000001  uploading",
        "left alone: 1 case",
        "  FAM-000001  EMG100000002  finalized  moved on since the run left it "
        "(--include-moved)",
        "moved 1 case to the trash"]
    assert statuses(sandbox)["EMG100000002"] == "finalized"
    asked = cli(sandbox, "revert", str(manifest), "--include-moved", "--yes")
    assert asked.exit_code == 0
    assert asked.stderr.splitlines()[-1] == "moved 1 case to the trash"
    assert statuses(sandbox)["EMG100000002"] == "trash"
    assert count(sandbox, PUT) == 2


def test_where_the_run_left_a_case_is_not_a_move(delivering: SandboxThread,
                                                 tmp_path: Path) -> None:
    manifest = imported(delivering, tmp_path, 2, set_status=["custom_status_1", ""])
    # FAM-000001 was only delivered by the pipeline: moved on; FAM-000000 the run left at
    # custom_status_1 (the manifest says so)
    result = cli(delivering, "revert", str(manifest), "--dry-run")
    assert result.stderr.splitlines()[1:5] == [
        "to the trash: 1 case",
        "  FAM-000000  EMG100000001  custom_status_1",
        "left alone: 1 case",
        "  FAM-000001  EMG100000002  delivered  moved on since the run left it "
        "(--include-moved)"]
    # without the manifest, where the run left a case is not known: every user status is a move
    bare = cli(delivering, "revert", "--ledger", str(ledger_of(manifest)), "--dry-run")
    assert bare.stderr.splitlines()[1] == "left alone: 2 cases"


@pytest.mark.slow
def test_an_adopted_case_is_left_alone_unless_asked(sandbox: SandboxThread,
                                                    tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path, 2)
    other = tmp_path / "other.sqlite"
    adopted = cli(sandbox, "run", str(manifest), "--ledger", str(other), "--if-exists", "adopt",
                  "-q")
    assert adopted.exit_code == 0, adopted.stderr
    result = cli(sandbox, "revert", str(manifest), "--ledger", str(other), "--yes")
    assert result.exit_code == 0
    why = "adopted: found on the server, not created by this ledger (--include-adopted)"
    assert result.stderr.splitlines() == [
        "revert: 2 cases created by every run of this ledger (run 1)",
        "left alone: 2 cases",
        f"  FAM-000000  EMG100000001  uploading  {why}",
        f"  FAM-000001  EMG100000002  uploading  {why}",
        "nothing was sent: no case to move to the trash"]
    assert count(sandbox, PUT) == 0
    asked = cli(sandbox, "revert", "--ledger", str(other), "--include-adopted", "--yes")
    assert asked.exit_code == 0
    assert asked.stderr.splitlines()[-1] == "moved 2 cases to the trash"


def test_without_a_terminal_and_without_yes_nothing_is_sent(sandbox: SandboxThread,
                                                             tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path)
    result = cli(sandbox, "revert", str(manifest))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [*PLAN3, f"Error: {revert_cli.NO_TERMINAL}"]
    assert count(sandbox, PUT) == 0 and revert_steps(manifest) == {}


@pytest.mark.parametrize(("answer", "code", "last", "puts"), [
    ("y\n", 0, "moved 3 cases to the trash", 3),
    ("n\n", 2, "Error: nothing was sent (answered no)", 0),
])
@pytest.mark.slow
def test_on_a_terminal_the_user_is_asked(sandbox: SandboxThread, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, answer: str,
                                         code: int, last: str, puts: int) -> None:
    manifest = imported(sandbox, tmp_path)
    monkeypatch.setattr(revert_cli, "interactive", lambda: True)
    result = cli(sandbox, "revert", str(manifest), answer=answer)
    assert result.exit_code == code
    lines = result.stderr.splitlines()
    assert lines[:len(PLAN3)] == PLAN3
    # newer click test runners echo the answer after the prompt; the declared floor (8.2.0) does not
    asked = "\n".join(lines[len(PLAN3):]).replace(f"[y/N]: {answer.strip()}\n", "[y/N]:")
    assert asked == f"Move 3 cases to the trash? [y/N]:{last}"
    assert count(sandbox, PUT) == puts


def test_a_sandbox_of_its_own_and_a_missing_ledger_are_refused(sandbox: SandboxThread,
                                                               tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "cases.csv", 1)
    own = invoke("revert", str(manifest), "--sandbox", "--yes")
    assert own.exit_code == 2 and "a --sandbox run's sandbox was gone" in own.stderr
    missing = cli(sandbox, "revert", str(manifest), "--yes")
    assert missing.exit_code == 2
    assert missing.stderr == (f"Error: no ledger at {ledger_of(manifest)}: no run recorded its "
                              "cases, nothing to revert\n")


@pytest.mark.slow
def test_a_later_run_skips_reverted_families_unless_asked(sandbox: SandboxThread,
                                                          tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path)
    assert cli(sandbox, "revert", str(manifest), "--only", "FAM-000001", "--yes").exit_code == 0
    again = cli(sandbox, "run", str(manifest))
    assert again.exit_code == 0
    assert again.stderr.splitlines()[:2] == [
        "1 warning:",
        "cases.csv: warning: skipped 1 family whose case was moved to the trash by revert: "
        "FAM-000001 (rerun with --recreate-reverted to create them again, once their revert "
        "is done)"]
    results = (tmp_path / "cases_results.csv").read_text().splitlines()
    row = next(line for line in results if ",FAM-000001," in line and "proband" in line)
    assert row.startswith("case EMG100000002 moved to the trash by revert,,FAM-000001,")
    recreated = cli(sandbox, "run", str(manifest), "--recreate-reverted")
    assert recreated.exit_code == 0
    assert "created 1" in recreated.stderr
    assert statuses(sandbox) == {"EMG100000001": "uploading", "EMG100000002": "trash",
                                 "EMG100000003": "uploading", "EMG100000004": "uploading"}
    status = cli(sandbox, "status", str(manifest))
    assert "revert" not in status.stdout.split("Failures")[0]  # a new life: no revert step


def test_status_shows_the_revert_step(sandbox: SandboxThread, tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path)
    assert cli(sandbox, "revert", str(manifest), "--only", "FAM-000001", "--yes").exit_code == 0
    report = cli(sandbox, "status", str(manifest), "--json")
    assert json.loads(report.stdout)["steps"]["revert"] == {"succeeded": 1}


def test_the_sandbox_s_trash_keeps_cases_out_of_listings_and_look_ups(
        sandbox: SandboxThread, tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path, 2)
    assert cli(sandbox, "revert", str(manifest), "--only", "FAM-000000", "--yes").exit_code == 0
    anyio.run(trash_seen_through_the_api, sandbox.url)
    inferred = [b.what for b in SANDBOX if "trash" in b.what]
    assert len(inferred) == 4
    assert {b.known for b in SANDBOX if "trash" in b.what} == {"inferred"}


async def trash_seen_through_the_api(url: str) -> None:
    credentials = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
    async with Client(url, credentials=credentials) as client:
        listed = [hit["name"] async for hit in client.list_cases()]
        trashed = [hit["name"] async for hit in client.list_cases(status=["trash"])]
        assert (listed, trashed) == (["EMG100000002"], ["EMG100000001"])
        assert await client.find_samples("FAM-000000-S0") == []
        assert [h["note"] for h in await client.find_samples("FAM-000001-S0")] == [
            "EMG100000002"]
        assert (await client.get_case("EMG100000001"))["status"] == "trash"
        assert (await client.case_info("EMG100000001"))["status"] == "trash"


def test_a_lost_answer_is_reconciled_by_reading_the_status(sandbox: SandboxThread,
                                                           tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path, 2)
    lost = Outcome(kind="RequestTimeout", message="no answer")
    with Ledger.open(ledger_of(manifest)) as ledger:
        for family_id in ("FAM-000000", "FAM-000001"):
            ledger.set_step(family_id, "revert", State.SENDING, attempt=True)
            ledger.record_unknown(family_id, "revert", lost)
    force(sandbox, "EMG100000001", "trash")  # that one reached the server; the other did not
    result = cli(sandbox, "revert", str(manifest), "--yes")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "revert: 2 cases created by every run of this ledger (run 1)",
        "to the trash: 1 case",
        "  FAM-000001  EMG100000002  uploading",
        "already in the trash, recorded (nothing sent): 1 case",
        "  FAM-000000  EMG100000001  trash",
        "moved 1 case to the trash, 1 already there recorded"]
    assert count(sandbox, PUT) == 1
    assert revert_steps(manifest) == {"FAM-000000": "succeeded", "FAM-000001": "succeeded"}


def test_a_refused_move_is_a_failed_family_and_exit_1(sandbox: SandboxThread,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = imported(sandbox, tmp_path, 1)
    monkeypatch.setattr(sandbox_api, "USER_STATUSES", frozenset({"finalized"}))
    result = cli(sandbox, "revert", str(manifest), "--yes")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-2:] == [
        "moved 0 cases to the trash, 1 failed",
        "  FAM-000000  EMG100000001  failed: Unknown status: trash"]
    assert revert_steps(manifest) == {"FAM-000000": "failed"}
    status = cli(sandbox, "status", str(manifest))
    assert ("  1 x the move to the trash failed: Unknown status: trash (family FAM-000000)"
            in status.stdout.splitlines())


def test_a_ledger_older_than_origins_takes_its_cases_as_adopted(sandbox: SandboxThread,
                                                                tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path, 1)
    with sqlite3.connect(ledger_of(manifest)) as conn:  # as schema 3 left it
        conn.execute("DROP TABLE origins")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.close()
    result = cli(sandbox, "revert", str(manifest), "--dry-run")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[1:3] == [
        "left alone: 1 case",
        "  FAM-000000  EMG100000001  uploading  origin not recorded (written before this "
        "ledger kept it): taken as adopted (--include-adopted)"]
    with Ledger.open(ledger_of(manifest), create=False) as ledger:
        assert ledger.meta("schema_version") == "5"
    asked = cli(sandbox, "revert", str(manifest), "--include-adopted", "--yes")
    assert asked.stderr.splitlines()[-1] == "moved 1 case to the trash"


def test_a_ledger_of_another_server_is_refused(sandbox: SandboxThread, tmp_path: Path) -> None:
    manifest = imported(sandbox, tmp_path, 1)
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path())) as other:
        result = cli(other, "revert", str(manifest), "--yes")
        assert result.exit_code == 2
        assert "belongs to" in result.stderr
        assert count(other, PUT) == 0 and count(other, INFO) == 0


@pytest.mark.slow
def test_a_case_found_after_a_lost_answer_is_one_the_run_created(tmp_path: Path) -> None:
    config = SandboxConfig(fixture=demo_fixture_path(), drop_after_commit=1.0)
    with SandboxThread(config) as lossy:
        manifest = write_manifest(tmp_path / "cases.csv", 2)
        run = cli(lossy, "run", str(manifest))
        assert run.exit_code == 0, run.stderr
        assert "created 0, adopted 2" in run.stderr  # every answer lost, every case found
        result = cli(lossy, "revert", str(manifest), "--dry-run")
        assert result.stderr.splitlines()[1] == "to the trash: 2 cases"
