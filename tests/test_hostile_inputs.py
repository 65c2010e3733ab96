"""Every hostile input, as one table: the exit code and message a user gets, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import hostile_cli, hostile_manifests
from tests.hostile import Hostile, run_case

CASES = [*hostile_manifests.CASES, *hostile_cli.CASES]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Hostile, tmp_path: Path) -> None:
    outcome = run_case(case, tmp_path)
    text = outcome.stdout + outcome.stderr
    assert "Traceback" not in text, text
    assert outcome.code == case.code, text
    assert case.phrase.lower() in text.lower(), text
