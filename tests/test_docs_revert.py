"""docs/revert.md shows a plan and a summary as the command prints them (its shell blocks run in
tests/test_readme_blocks.py, with every page of docs/)."""

from __future__ import annotations

from batch.outputs.status import render_plan, render_revert
from batch.run.revert import Item, RevertPlan, RevertSummary
from tests.test_readme_blocks import REPO, readme_blocks, session_blocks

PAGE = REPO / "docs" / "revert.md"


def test_the_page_has_runnable_blocks() -> None:
    assert len(session_blocks(PAGE)) >= 4


def test_the_plan_the_page_shows_is_the_one_printed() -> None:
    shown = [b.text for b in readme_blocks(PAGE) if b.language == "" and
             b.text.startswith("revert:")]
    plan = RevertPlan("every run of this ledger (run 1)", [
        Item("TRIO-2024-001", "EMG100000001", "moved", "finalized",
             "moved on since the run left it (--include-moved)"),
        Item("SINGLE-2024-002", "EMG100000002", "trash", "uploading"),
        Item("BS-2024-003", "EMG100000003", "trash", "uploading"),
        Item("DUO-2024-004", "EMG100000004", "done", "trash", "moved to the trash by revert"),
    ])
    printed = render_plan(plan) + "\n" + render_revert(RevertSummary(plan, trashed=2)) + "\n"
    assert shown == [printed]
