"""No command overwrites what the user has: the manifest it reads, the ledger, a results file
holding a run's Case Ids, or a template filled in since. Real runs against a sandbox thread,
real files."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch.outputs.keep import case_ids_held
from batch.sandbox import SandboxConfig, SandboxThread, demo_fixture_path
from tests.cli_sandbox import invoke
from tests.manifests import write_manifest


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    """One sandbox for the module (cases delivered at once)."""
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path(), advance_after=0)) as sandbox:
        yield sandbox.url


def case_ids(path: Path) -> list[str]:
    """The Case Id cells of a results file, row by row (empty ones left out)."""
    rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
    header = next(row for row in rows if "Case Id" in row)
    at = header.index("Case Id")
    return [row[at] for row in rows[rows.index(header) + 1:] if row[at]]


def ran(tmp_path: Path, url: str, families: int = 3) -> Path:
    """A manifest run for real: its results file holds a Case Id per family."""
    prefix = "K" + tmp_path.name[-12:]  # a family name per test: the sandbox is shared
    manifest = write_manifest(tmp_path / "m.csv", families, prefix=prefix)
    result = invoke("run", str(manifest), "--quiet", url=url)
    assert result.exit_code == 0, result.output
    assert len(case_ids(tmp_path / "m_results.csv")) == families
    return manifest


def test_export_never_writes_over_the_manifest_or_the_ledger(tmp_path: Path,
                                                             sandbox_url: str) -> None:
    """``export m.csv --out m.csv`` (and the same through --ledger, which names no manifest,
    and ``pull info m.csv --out m.csv``): exit 2, the manifest byte for byte as it was."""
    manifest = ran(tmp_path, sandbox_url)
    before = manifest.read_bytes()
    ledger = tmp_path / "m.ledger.sqlite"
    result = invoke("export", str(manifest), "--out", str(manifest))
    assert result.exit_code == 2
    assert result.stderr == (f"Error: --out {manifest} is the manifest {manifest}: it is never "
                             "overwritten; choose another --out file\n")
    result = invoke("export", "--ledger", str(ledger), "--out", str(manifest), "--force")
    assert result.exit_code == 2
    assert f"is the manifest {manifest}" in result.stderr
    assert manifest.read_bytes() == before
    for table in ("info", "candidates"):  # the pulls that read a manifest's cases
        result = invoke("pull", table, str(manifest), "--out", str(manifest), url=sandbox_url)
        assert result.exit_code == 2
        assert f"is the manifest {manifest}" in result.stderr
    assert manifest.read_bytes() == before
    result = invoke("export", "--ledger", str(ledger), "--out", str(ledger.with_suffix(".csv")))
    assert result.exit_code == 0  # another name is fine
    result = invoke("export", str(manifest), "--out", str(tmp_path / "m_results.csv"))
    assert result.exit_code == 2
    assert result.stderr == (f"Error: {tmp_path / 'm_results.csv'} holds the Case Ids of a run; "
                             "left as it is: choose another --out file, or pass --force to "
                             "replace it\n")
    assert len(case_ids(tmp_path / "m_results.csv")) == 3
    forced = invoke("export", str(manifest), "--out", str(tmp_path / "m_results.csv"), "--force")
    assert forced.exit_code == 0


def test_validate_of_an_edited_manifest_keeps_the_runs_results(tmp_path: Path,
                                                               sandbox_url: str) -> None:
    """A manifest edited after its run, then validated (or run with another ledger) with an
    error: the run's
    results file keeps its Case Ids; the errors go beside it, and the output says which."""
    manifest = ran(tmp_path, sandbox_url)
    results = tmp_path / "m_results.csv"
    before = results.read_bytes()
    text = manifest.read_text(encoding="utf-8").replace("2020-01-02", "2020-13-45", 1)
    manifest.write_text(text, encoding="utf-8")
    beside = tmp_path / "m_results-2.csv"
    fresh = str(tmp_path / "fresh.sqlite")  # a run that knows none of the cases: refused
    for command in (["validate"], ["run", "--ledger", fresh]):
        result = invoke(*command, str(manifest), url=sandbox_url)
        assert result.exit_code == 2, result.output
        assert results.read_bytes() == before
        assert f"results: {beside}" in result.stderr.splitlines()
        assert (f"kept: {results} holds Case Ids these results lack; left as it is"
                in result.stderr.splitlines())
        assert "Errors" in beside.read_text(encoding="utf-8").splitlines()[1]
    assert not (tmp_path / "m_results-3.csv").exists()  # the errors file is replaced, not piled


def test_a_rerun_replaces_its_own_results(tmp_path: Path, sandbox_url: str) -> None:
    """Results holding as many Case Ids as before replace the file: no copies beside it."""
    manifest = ran(tmp_path, sandbox_url)
    result = invoke("run", str(manifest), url=sandbox_url)
    assert result.exit_code == 0
    assert f"results: {tmp_path / 'm_results.csv'}" in result.stderr.splitlines()
    assert "kept:" not in result.stderr
    assert sorted(p.name for p in tmp_path.glob("m_results*")) == ["m_results.csv"]


def test_template_replaces_a_file_only_with_force(tmp_path: Path) -> None:
    """A template filled in since it was written is left as it is (exit 2, nothing written)
    unless --force."""
    assert invoke("template", "--out-dir", str(tmp_path)).exit_code == 0
    filled = tmp_path / "batch_template.csv"
    with filled.open("a", encoding="utf-8") as handle:
        handle.write("F1,Whole Genome,s3://b/a.fastq.gz,,S1" + "," * 18 + "\n")
    edited = filled.read_bytes()
    (tmp_path / "update_template.csv").unlink()
    (tmp_path / "example_manifest.csv").unlink()
    result = invoke("template", "--out-dir", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == (f"Error: {filled} already exists; left as it is: pass --force to "
                             "replace it\n")
    assert filled.read_bytes() == edited
    assert not (tmp_path / "update_template.csv").exists()
    result = invoke("template", "--out-dir", str(tmp_path), "--force")
    assert result.exit_code == 0
    assert filled.read_bytes() != edited


def test_a_run_with_another_ledger_keeps_the_first_runs_results(tmp_path: Path,
                                                                sandbox_url: str) -> None:
    """A second ledger knows none of the cases (its families stop: already on the server):
    its results go beside the first run's, which keeps every Case Id."""
    manifest = ran(tmp_path, sandbox_url)
    results = tmp_path / "m_results.csv"
    before = results.read_bytes()
    other = invoke("run", str(manifest), "--ledger", str(tmp_path / "other.sqlite"),
                   url=sandbox_url)
    assert other.exit_code == 1, other.output
    assert results.read_bytes() == before
    assert f"results: {tmp_path / 'm_results-2.csv'}" in other.stderr.splitlines()
    assert case_ids_held(tmp_path / "m_results-2.csv") == set()
