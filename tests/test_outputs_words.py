"""What people read says what happened in words: no class names, statuses filled, plurals."""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import openpyxl
import pytest

from batch import errors, outputs
from batch.api import Client, Credentials, RetryPolicy
from batch.ledger import Ledger, State, default_path
from batch.manifest import read_manifest
from batch.outputs.outcomes import step_outcome
from batch.run import RunOptions, RunSummary, run_manifest
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    demo_fixture_path,
    run_sandbox,
)
from batch.text import duration, plural
from tests import ledgers
from tests.conftest import REPO

CREDENTIALS = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)


def _subclasses(root: type) -> list[type]:
    found = []
    for sub in root.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


#: Every class name of the exception tree, and the run engine's marker of undecided outcomes.
NAMES = sorted({c.__name__ for c in (errors.BatchError, *_subclasses(errors.BatchError))}
               | {"Undecided"})
CLASS_PATTERN = re.compile(r"\b(" + "|".join(NAMES) + r")\b")


@pytest.mark.parametrize(("step", "state", "kind", "message", "status", "expected"), [
    ("assign", "failed", "NotFound", "no such user", 404,
     "the server refused the assignment: no such user (HTTP 404)"),
    ("create", "failed", "PermanentError", "Case Type is required", 400,
     "the server refused the case creation: Case Type is required (HTTP 400)"),
    ("assign", "failed", "PermanentError", "unknown user e-mail(s): a@b", None,
     "the assignment was not sent: unknown user e-mail(s): a@b"),
    ("create", "failed", "BuildError", "BioSample Name S1 is not an existing sample", None,
     "the case could not be built from its rows: BioSample Name S1 is not an existing "
     "sample; nothing was sent"),
    ("create", "failed", "NotFound", "look-up failed: Storage provider 777 not found", 404,
     "a look-up before the case creation failed: Storage provider 777 not found (HTTP 404); "
     "nothing was sent"),
    ("set_status", "failed", "RetriesExhausted", "gave up after retries: Service Unavailable",
     503, "the status change failed after several tries: Service Unavailable (HTTP 503)"),
    ("create", "unknown", "AmbiguousCreate", "outcome unknown after HTTP 502: Bad Gateway", 502,
     "the outcome of the case creation is unknown (outcome unknown after HTTP 502: Bad "
     "Gateway): the case may exist; rerun to look it up"),
    ("create", "unknown", "Unknown", "needs review: the proband has no BioSample Name", None,
     "the case creation needs review: the proband has no BioSample Name; check the case in "
     "Emedgene"),
    ("set_status", "sending", None, None, None,
     "the outcome of the status change is unknown (interrupted while the request was in "
     "flight): rerun to send it again (safe to repeat)"),
    ("assign", "pending", "AuthError", "token refused", 401,
     "the assignment was not sent (the server refused the credentials: token refused "
     "(HTTP 401)); rerun once that is fixed"),
    ("preset_group", "failed", "ServerError", "Internal Server Error", 500,
     "the preset group failed: Internal Server Error (HTTP 500)"),
    ("create", "failed", "SomethingNew", "", None, "the case creation failed: no reason given"),
    ("create", "failed", "CaseExists", "the family's case already exists on the server: EMG1",
     None, "the case creation was not sent: the family's case already exists on the server: "
     "EMG1"),
    ("create", "failed", "NeedsReview", "needs review: two cases; put the right one in the "
     "family's Case Id cell", None, "the case creation needs review: two cases; put the right "
     "one in the family's Case Id cell; check the case in Emedgene"),
    ("create", "failed", "NotFound", "could not look for the family's case on the server: "
     "Sample not found", 404, "the search for the family's existing case failed: Sample not "
     "found (HTTP 404); nothing was sent"),
    ("preset_group", "unknown", "Unknown", "needs review: check the case in Emedgene: ...",
     None, "the preset group needs review: check the case in Emedgene: ..."),
])
def test_describe(step: str, state: str, kind: str | None, message: str | None,
                  status: int | None, expected: str) -> None:
    text = step_outcome(step, state, kind, message, status)
    assert text == expected
    assert not CLASS_PATTERN.search(text)


def test_describe_a_state_read_back_from_json() -> None:
    assert step_outcome("create", "odd", None, "x") == "the case creation is odd: x"


def test_plural_and_duration() -> None:
    assert [plural(n, "family") for n in (0, 1, 2)] == ["0 families", "1 family", "2 families"]
    assert plural(1, "case") == "1 case" and plural(3, "case") == "3 cases"
    assert plural(2, "day") == "2 days"
    assert [duration(s) for s in (0.1884902569999838, 12.34, 59.96, 65, 3599.4, 7620, -1,
                                  float("nan"))] == [
        "0.2 s", "12.3 s", "60.0 s", "1 min 05 s", "59 min 59 s", "2 h 07 min", "-", "-"]


def test_status_report_in_words(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as led:
        led.add_families([ledgers.family("F1", 0)])
        led.set_step("F1", "create", State.FAILED, http_status=400, error_class="PermanentError",
                     error_message="Case Type is required")
        text = outputs.render_status(outputs.status_report(led))
    assert "1 x the case creation failed: Case Type is required (family F1)" in text
    assert not CLASS_PATTERN.search(text)


def test_summary_counts_families_in_words() -> None:
    one = RunSummary(families=1, failed=1, ran=True)
    assert outputs.render_summary(one, files={}).splitlines()[0].startswith("done: 1 family: ")
    invalid = RunSummary(families=1, invalid=1)
    assert outputs.render_summary(invalid, files={}).splitlines()[0] == (
        "invalid: the one family has errors; nothing was sent")


# --------------------------------------------------------------------------- a real run


@pytest.fixture
async def sandbox_url() -> AsyncIterator[str]:
    async with run_sandbox(SandboxConfig(fixture=demo_fixture_path(), advance_after=0)) as sb:
        yield sb.url


async def _run(manifest: Path, url: str) -> RunSummary:
    parsed = read_manifest(manifest)
    with Ledger.open(default_path(manifest)) as ledger:
        ledger.lock()
        async with Client(url, credentials=CREDENTIALS, retry=RetryPolicy.for_testing()) as c:
            return await run_manifest(parsed, client=c, ledger=ledger, options=RunOptions())


def _cells(path: Path) -> list[str]:
    book = openpyxl.load_workbook(path)
    return [str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row
            if c.value is not None]


async def test_a_real_run_says_what_happened(tmp_path: Path, sandbox_url: str) -> None:
    """The walk-through's mistyped e-mail and an update of a case that does not exist: the
    review, the results and the status say what happened in words, with the HTTP status
    the server gave, and never name a class."""
    walk = tmp_path / "import.csv"
    shutil.copy(REPO / "inputs" / "walkthrough.csv", walk)
    update = tmp_path / "update.csv"
    update.write_text("Case Id,Assign To\nnot-a-case,analyst@example.com\n", encoding="utf-8")
    for manifest in (walk, update):
        summary = await _run(manifest, sandbox_url)
        assert summary.failed == 1
        with Ledger.open(default_path(manifest)) as ledger:
            parsed = read_manifest(manifest)
            review = outputs.write_review(ledger, parsed, tmp_path, summary=summary.as_dict())
            results = outputs.write_results(ledger, parsed, tmp_path)
            status = outputs.render_status(outputs.status_report(ledger))
        texts = [*_cells(review), *(c for row in csv.reader(results.open()) for c in row),
                 status, outputs.render_summary(summary, files={})]
        assert [t for t in texts if CLASS_PATTERN.search(t)] == []

    walk_cases = _cases(tmp_path / "import_review.xlsx")
    assert walk_cases["WT-002"]["Last Error"] == (
        "the assignment was not sent: unknown user e-mail(s): genetcist@example.com")
    assert walk_cases["WT-002"]["HTTP Status"] is None  # never sent: no answer to show
    assert walk_cases["WT-001"]["HTTP Status"] == 201
    update_cases = _cases(tmp_path / "update_review.xlsx")
    assert update_cases["not-a-case"]["Last Error"] == (
        "the server refused the assignment: Test not-a-case not found (HTTP 404)")
    assert update_cases["not-a-case"]["HTTP Status"] == 404
    summary_rows = {r[0].value: r[1].value
                    for r in openpyxl.load_workbook(tmp_path / "update_review.xlsx")["Summary"]}
    assert re.fullmatch(r"\d+\.\d s", str(summary_rows["Elapsed"]))


def _cases(path: Path) -> dict[str, dict[str, object]]:
    rows = list(openpyxl.load_workbook(path)["Cases"].iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    return {str(r[0]): dict(zip(header, r, strict=True)) for r in rows[1:]}
