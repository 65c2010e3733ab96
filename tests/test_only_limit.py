"""``--only`` and ``--limit`` on ``run`` and ``validate``: some families, on the ledger of the
whole manifest, so that the rest is run later with nothing done twice."""

from __future__ import annotations

import re
from pathlib import Path

from batch.ledger import Ledger
from batch.sandbox import SandboxThread
from tests.cli_sandbox import invoke
from tests.manifests import write_manifest


def summary(stderr: str, tmp: Path) -> list[str]:
    text = re.sub(r"elapsed \d+\.\ds", "elapsed Xs", stderr.replace(str(tmp), "TMP"))
    return [line for line in text.splitlines() if not line.startswith(("results:", "review:"))]


def test_only_then_limit_then_the_rest(tmp_path: Path, delivering: SandboxThread) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 4, prefix="OL")
    ids = [f"OL-{i:06d}" for i in range(4)]
    first = invoke("run", str(manifest), "--only", f"{ids[2]}", url=delivering.url)
    assert first.exit_code == 0, first.output
    assert summary(first.stderr, tmp_path)[0] == (
        "done: 1 family: created 1, adopted 0, updated 0, skipped 0, failed 0, unknown 0")
    assert len(delivering.state.cases) == 1
    limited = invoke("run", str(manifest), "--limit", "2", url=delivering.url)
    assert limited.exit_code == 0, limited.output
    assert summary(limited.stderr, tmp_path)[:3] == [
        "resuming: 1 of 4 families done",
        "done: 4 families: created 2, adopted 0, updated 0, skipped 1, failed 0, unknown 0",
        "left for the next run: 1 family (--limit)"]
    rest = invoke("run", str(manifest), url=delivering.url)
    assert summary(rest.stderr, tmp_path)[1] == (
        "done: 4 families: created 1, adopted 0, updated 0, skipped 3, failed 0, unknown 0")
    assert len(delivering.state.cases) == 4
    with Ledger.open(tmp_path / "m.ledger.sqlite", create=False) as ledger:  # one ledger
        assert ledger.family_count() == 4


def test_only_takes_a_list_and_refuses_unknown_families(tmp_path: Path,
                                                        delivering: SandboxThread) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 3, prefix="OU")
    result = invoke("run", str(manifest), "--only", "OU-000000, OU-000001", url=delivering.url)
    assert result.exit_code == 0, result.output
    assert summary(result.stderr, tmp_path)[0].startswith("done: 2 families: created 2")
    wrong = invoke("run", str(manifest), "--only", "OU-000000,NOPE", url=delivering.url)
    assert wrong.exit_code == 2
    assert wrong.stderr == "Error: --only: m.csv has no family 'NOPE'\n"


def test_validate_only_and_limit(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 5, prefix="VL")
    assert invoke("validate", str(manifest), "--limit", "2").stderr.splitlines()[-1] == (
        "m.csv: 2 families, 0 errors, 0 warnings")
    only = invoke("validate", str(manifest), "--only", "VL-000004", "--only", "VL-000001")
    assert only.stderr.splitlines()[-1] == "m.csv: 2 families, 0 errors, 0 warnings"
