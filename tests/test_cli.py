"""The command line: exact output lines and exit codes, with a sandbox served from a thread."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batch.cli import main
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    SandboxThread,
    demo_fixture_path,
)
from tests.manifests import write_manifest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    """One sandbox for the module (cases delivered at once)."""
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path(), advance_after=0)) as sandbox:
        yield sandbox.url


def invoke(*args: str, url: str | None = None) -> Result:
    """Run the CLI in-process with sandbox credentials (and host, when given)."""
    env = {"EMG_USERNAME": DEFAULT_USER, "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": "",
           "EMG_HOST": url or ""}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def lines(text: str) -> list[str]:
    """Output lines with the elapsed time and loopback port masked, progress lines left out
    (they come every few seconds, however long the machine takes)."""
    text = re.sub(r"elapsed \d+\.\ds", "elapsed Xs", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    return [line for line in text.splitlines() if not PROGRESS.match(line)]


PROGRESS = re.compile(r"^(validating|running): \d+/\d+ families, ")


def test_run_success(tmp_path: Path, sandbox_url: str) -> None:
    """All families created: the summary, the files, exit 0."""
    manifest = write_manifest(tmp_path / "ok.csv", 3, prefix="OK")
    result = invoke("run", str(manifest), url=sandbox_url)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert lines(result.stderr) == [
        "done: 3 families: created 3, adopted 0, updated 0, skipped 0, failed 0, unknown 0",
        "requests 8, retries 0, 429s 0, elapsed Xs",
        f"results: {tmp_path / 'ok_results.csv'}",
        f"review: {tmp_path / 'ok_review.xlsx'}",
        f"ledger: {tmp_path / 'ok.ledger.sqlite'}",
    ]


def test_run_partial_failure(tmp_path: Path, sandbox_url: str) -> None:
    """One family's step fails: exit 1 and a hint to rerun."""
    manifest = write_manifest(tmp_path / "part.csv", 2, prefix="PART",
                              extra={"Assign To": ["", "nobody@example.com"]})
    result = invoke("run", str(manifest), "--quiet", url=sandbox_url)
    assert result.exit_code == 1
    assert result.stdout == ""
    out = lines(result.stderr)
    assert out[0] == ("done: 2 families: created 2, adopted 0, updated 0, skipped 0, failed 1, "
                      "unknown 0")
    assert out[-1] == ("hint: fix what failed and rerun the same command; created cases are "
                       "never created again")


def test_run_invalid_manifest_sends_nothing(tmp_path: Path, sandbox_url: str) -> None:
    """An invalid manifest: every problem on stderr, exit 2, an Errors results file."""
    manifest = write_manifest(tmp_path / "bad.csv", 2, prefix="BAD")
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(",M,", ",X,", 1),
                        encoding="utf-8")
    result = invoke("run", str(manifest), url=sandbox_url)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "invalid: 1 of 2 families have errors; nothing was sent" in lines(result.stderr)
    assert "bad.csv:3: family BAD-000000: Sex = 'X'" in result.stderr
    results = (tmp_path / "bad_results.csv").read_text(encoding="utf-8").splitlines()
    assert results[1].startswith("Errors,")


def test_run_json_summary(tmp_path: Path, sandbox_url: str) -> None:
    """--json prints the summary as JSON on stdout."""
    manifest = write_manifest(tmp_path / "js.csv", 2, prefix="JS")
    result = invoke("run", str(manifest), "--json", url=sandbox_url)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["created"], data["exit_code"], data["failed"]) == (2, 0, 0)


def test_run_without_host_is_a_usage_error(tmp_path: Path) -> None:
    """No --host, no $EMG_HOST, no --sandbox: exit 2 with a hint."""
    manifest = write_manifest(tmp_path / "m.csv", 1)
    result = invoke("run", str(manifest))
    assert result.exit_code == 2
    assert "no host: pass --host URL (or set EMG_HOST), or --sandbox" in result.stderr


def test_run_on_plain_http_remote_host_is_refused(tmp_path: Path) -> None:
    """HTTPS is required except for loopback."""
    manifest = write_manifest(tmp_path / "m.csv", 1)
    result = invoke("run", str(manifest), "--host", "http://emg.invalid")
    assert result.exit_code == 2
    assert "https" in result.stderr.lower()


def test_unreadable_manifest_exits_2(tmp_path: Path) -> None:
    """A file that is not a manifest: one clear line, exit 2, no traceback."""
    manifest = tmp_path / "empty.csv"
    manifest.write_bytes(b"")
    result = invoke("run", str(manifest), "--sandbox")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.startswith("empty.csv") or "Error:" in result.stderr


def test_validate_clean_and_with_errors(tmp_path: Path) -> None:
    """validate: 0 when clean, 2 with errors; nothing needs a server for plain paths."""
    manifest = write_manifest(tmp_path / "v.csv", 2, prefix="V")
    result = invoke("validate", str(manifest), "--sandbox")
    assert result.exit_code == 0, result.output
    assert (result.stdout, lines(result.stderr)) == (
        "", ["v.csv: 2 families, 0 errors, 0 warnings"])
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("HP:0001250", "0001250"),
                        encoding="utf-8")
    result = invoke("validate", str(manifest), "--sandbox")
    assert result.exit_code == 2
    assert "v.csv: 2 families, 2 errors, 0 warnings" in lines(result.stderr)


def test_validate_server_dry_runs(tmp_path: Path, sandbox_url: str) -> None:
    """validate --server asks the server about every family."""
    manifest = write_manifest(tmp_path / "s.csv", 3, prefix="S")
    result = invoke("validate", str(manifest), "--server", url=sandbox_url)
    assert result.exit_code == 0, result.output
    assert lines(result.stderr) == [
        "s.csv: 3 families, 0 errors, 0 warnings, 3 checked by the server"]


def test_status_and_export(tmp_path: Path, sandbox_url: str) -> None:
    """status prints counts; --json parses; export writes the asked format."""
    manifest = write_manifest(tmp_path / "st.csv", 2, prefix="ST")
    assert invoke("run", str(manifest), "--quiet", url=sandbox_url).exit_code == 0
    result = invoke("status", str(manifest))
    assert result.exit_code == 0
    assert "Families: 2" in lines(result.stdout)
    data = json.loads(invoke("status", str(manifest), "--json").stdout)
    assert data["steps"]["create"]["succeeded"] == 2
    for suffix in (".xlsx", ".csv", ".parquet"):
        out = tmp_path / f"cases{suffix}"
        result = invoke("export", str(manifest), "--out", str(out))
        assert result.exit_code == 0
        assert (result.stdout, result.stderr) == ("", f"wrote {out}\n")
        assert out.exists()


def test_status_without_ledger_exits_2(tmp_path: Path) -> None:
    """status on a manifest never run: a clear message, exit 2."""
    result = invoke("status", str(tmp_path / "never.csv"))
    assert result.exit_code == 2
    assert "no ledger at" in result.stderr


def test_template_writes_manifests(tmp_path: Path) -> None:
    """template writes the official and the update manifest, and an example that validates."""
    result = invoke("template", "--out-dir", str(tmp_path))
    assert result.exit_code == 0
    assert result.stdout == "" and len(result.stderr.splitlines()) == 3
    assert (tmp_path / "batch_template.csv").read_text(encoding="utf-8").startswith("[Data]")
    checked = invoke("validate", str(tmp_path / "example_manifest.csv"), "--sandbox")
    assert (checked.exit_code, checked.stderr.splitlines()[-1]) == (
        0, "example_manifest.csv: 2 families, 0 errors, 0 warnings")


@pytest.mark.parametrize(
    "command",
    ["run", "validate", "status", "export", "template", "sandbox", "listen", "pull finalized",
     "pull candidates", "pull info"],
)
def test_every_command_has_help_with_examples(command: str) -> None:
    """--help works everywhere, and each command is in the README."""
    result = invoke(*command.split(), "--help")
    assert result.exit_code == 0
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"emg-batch {command.split()[0]}" in readme
    if command not in ("sandbox",):
        assert "Example" in result.stdout or "example" in result.stdout


def test_out_dir_is_created_before_anything_is_sent(tmp_path: Path, sandbox_url: str) -> None:
    """--out-dir that does not exist yet is made; outputs land there."""
    manifest = write_manifest(tmp_path / "od.csv", 1, prefix="OD")
    out = tmp_path / "new" / "sub"
    result = invoke("run", str(manifest), "--quiet", "--out-dir", str(out), url=sandbox_url)
    assert result.exit_code == 0, result.output
    assert (out / "od_results.csv").exists()
    assert (out / "od_review.xlsx").exists()


def test_host_with_credentials_in_the_url_is_refused(tmp_path: Path) -> None:
    """user:password@ in --host is refused: it would leak into ledgers and links."""
    manifest = write_manifest(tmp_path / "m.csv", 1)
    result = invoke("run", str(manifest), "--host", "https://me:secret@lab.emg.illumina.com")
    assert result.exit_code == 2
    assert "must not carry a user or password" in result.stderr
    assert "secret" not in result.output


def test_quickstart_example_runs_against_the_built_in_sandbox(tmp_path: Path) -> None:
    """The README's main command: the example manifest, --sandbox, every family created."""
    import shutil

    manifest = tmp_path / "example.csv"
    shutil.copy(ROOT / "inputs" / "example.csv", manifest)
    result = invoke("run", str(manifest), "--sandbox")
    assert result.exit_code == 0, result.output
    assert lines(result.stderr)[0] == (
        "done: 4 families: created 4, adopted 0, updated 2, skipped 0, failed 0, unknown 0")
