"""Streams, command by command: the data on stdout, everything for people on stderr, and
``--quiet`` keeps nothing there but errors (and the summary of a command that did not succeed).
Exact output per stream, with and without ``-q``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner, Result

from batch.api import Client, Credentials
from batch.cli import main
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    SandboxThread,
    demo_fixture_path,
)
from tests.cases import create_minimal
from tests.manifests import write_manifest

PROGRESS = re.compile(r"^(validating|running): \d+/\d+ families, ")
HINT = ("hint: fix what failed and rerun the same command; created cases are never created "
        "again")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path(), advance_after=0)) as sandbox:
        yield sandbox.url


def env_for(url: str | None) -> dict[str, str]:
    return {"EMG_USERNAME": DEFAULT_USER, "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": "",
            "EMG_HOST": url or ""}


def invoke(*args: str, url: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env_for(url), catch_exceptions=False)


def masked(text: str, tmp: Path) -> list[str]:
    """Lines with the folder, ports and times masked, progress lines (which come every few
    seconds however long a machine takes) left out."""
    text = text.replace(str(tmp), "TMP")
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"elapsed \d+\.\ds", "elapsed Xs", text)
    return [line for line in text.splitlines() if not PROGRESS.match(line)]


def finalized_case(url: str) -> str:
    async def go() -> str:
        creds = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
        async with Client(url, credentials=creds) as client:
            name = await create_minimal(client, "STREAMS-1", gender="Male")
            await client.set_status(name, "finalized")
            return name

    return anyio.run(go)


# -- run ---------------------------------------------------------------------------------------


def test_run_says_everything_on_stderr(tmp_path: Path, url: str) -> None:
    manifest = write_manifest(tmp_path / "r.csv", 2, prefix="RS")
    result = invoke("run", str(manifest), url=url)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert masked(result.stderr, tmp_path) == [
        "done: 2 families: created 2, adopted 0, updated 0, skipped 0, failed 0, unknown 0",
        "requests 6, retries 0, 429s 0, elapsed Xs",
        "results: TMP/r_results.csv",
        "review: TMP/r_review.xlsx",
        "ledger: TMP/r.ledger.sqlite",
    ]


def test_run_quiet_prints_nothing_when_all_is_done(tmp_path: Path, url: str) -> None:
    manifest = write_manifest(tmp_path / "q.csv", 2, prefix="RQ")
    result = invoke("run", str(manifest), "-q", url=url)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_run_json_is_the_only_thing_on_stdout(tmp_path: Path, url: str) -> None:
    manifest = write_manifest(tmp_path / "j.csv", 1, prefix="RJ")
    for quiet in ([], ["-q"]):
        result = invoke("run", str(manifest), "--json", *quiet, url=url)
        assert result.exit_code == 0
        assert json.loads(result.stdout)["families"] == 1
        assert masked(result.stderr, tmp_path) == []


def test_run_quiet_still_says_what_failed(tmp_path: Path, url: str) -> None:
    manifest = write_manifest(tmp_path / "f.csv", 1, prefix="RF",
                              extra={"Assign To": ["nobody@example.com"]})
    result = invoke("run", str(manifest), "-q", url=url)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert masked(result.stderr, tmp_path) == [
        "done: 1 family: created 1, adopted 0, updated 0, skipped 0, failed 1, unknown 0",
        "failures by reason, most frequent first:",
        "  1 x the assignment was not sent: unknown user e-mail(s): nobody@example.com "
        "(family RF-000000)",
        "requests 5, retries 0, 429s 0, elapsed Xs",
        "results: TMP/f_results.csv",
        "review: TMP/f_review.xlsx",
        "ledger: TMP/f.ledger.sqlite",
        HINT,
    ]


# -- validate ----------------------------------------------------------------------------------


def test_validate_streams(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "v.csv", 1, prefix="VS")
    plain = invoke("validate", str(manifest), "--sandbox")
    assert (plain.exit_code, plain.stdout) == (0, "")
    assert masked(plain.stderr, tmp_path) == ["v.csv: 1 family, 0 errors, 0 warnings"]
    quiet = invoke("validate", str(manifest), "--sandbox", "-q")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")
    data = json.loads(invoke("validate", str(manifest), "--json", "-q").stdout)
    assert data == {"manifest": str(manifest), "families": 1, "errors": 0, "warnings": 0,
                    "checked_on_server": 0, "problems": [], "results": None, "kept": None,
                    "exit_code": 0}


def test_validate_quiet_shows_errors_and_the_counts(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "e.csv", 1, prefix="VE")
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(",M,", ",X,", 1),
                        encoding="utf-8")
    result = invoke("validate", str(manifest), "--sandbox", "-q")
    assert (result.exit_code, result.stdout) == (2, "")
    assert masked(result.stderr, tmp_path) == [
        "e.csv:3: family VE-000000: Sex = 'X': Sex is not valid (M, F, U, Male, Female or "
        "Unknown)",
        "e.csv: 1 family, 1 error, 0 warnings",
        "results: TMP/e_results.csv",
    ]


# -- status, export, template ------------------------------------------------------------------


def test_status_export_and_template_streams(tmp_path: Path, url: str) -> None:
    manifest = write_manifest(tmp_path / "s.csv", 1, prefix="SS")
    assert invoke("run", str(manifest), "-q", url=url).exit_code == 0
    for quiet in ([], ["-q"]):
        status = invoke("status", str(manifest), *quiet)
        assert status.exit_code == 0 and status.stderr == ""
        assert status.stdout.splitlines()[0] == "Families: 1"
        assert json.loads(invoke("status", str(manifest), "--json", *quiet).stdout)[
            "families"] == 1
    out = tmp_path / "cases.csv"
    export = invoke("export", str(manifest), "--out", str(out))
    assert (export.exit_code, export.stdout, masked(export.stderr, tmp_path)) == (
        0, "", ["wrote TMP/cases.csv"])
    export = invoke("export", str(manifest), "--out", str(out), "-q")
    assert (export.exit_code, export.stdout, export.stderr) == (0, "", "")
    folder = tmp_path / "templates"
    template = invoke("template", "--out-dir", str(folder))
    assert (template.exit_code, template.stdout) == (0, "")
    assert masked(template.stderr, tmp_path) == [
        "wrote TMP/templates/batch_template.csv", "wrote TMP/templates/update_template.csv",
        "wrote TMP/templates/example_manifest.csv"]
    template = invoke("template", "--out-dir", str(folder), "-q", "--force")  # there already
    assert (template.exit_code, template.stdout, template.stderr) == (0, "", "")


# -- doctor ------------------------------------------------------------------------------------


def test_doctor_report_is_data(url: str) -> None:
    for quiet in ([], ["-q"]):
        result = invoke("doctor", "--host", url, *quiet)
        assert result.exit_code == 0 and result.stderr == ""
        lines = result.stdout.splitlines()
        assert lines[0].startswith("check ")
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+: compatible \(.*, read-only\)", lines[-1])


# -- pull --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pull_finalized_streams(tmp_path: Path, url: str) -> None:
    finalized_case(url)
    args = ["pull", "finalized", "--host", url, "--since", "1h", "--out", str(tmp_path / "r")]
    plain = invoke(*args)
    assert (plain.exit_code, plain.stdout) == (0, "")
    lines = masked(plain.stderr, tmp_path)
    assert re.fullmatch(r"done: \d+ cases?: downloaded \d+ reports?, already present 0, "
                        r"failed 0", lines[0]), lines
    assert lines[1:] == ["table: TMP/r/cases.xlsx", "table: TMP/r/cases.csv"]
    quiet = invoke(*args, "-q")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")
    data = json.loads(invoke(*args, "--json", "-q").stdout)
    assert data["failed"] == 0 and data["downloaded"] == 0  # all there already


@pytest.mark.slow
@pytest.mark.parametrize("what", ["info", "candidates"])
def test_pull_tables_streams(tmp_path: Path, url: str, what: str) -> None:
    name = finalized_case(url)
    out = tmp_path / f"{what}.csv"
    args = ["pull", what, "--host", url, "--cases", name, "--out", str(out)]
    plain = invoke(*args)
    assert (plain.exit_code, plain.stdout) == (0, "")
    assert masked(plain.stderr, tmp_path)[1:] == [f"wrote TMP/{what}.csv"]
    assert masked(plain.stderr, tmp_path)[0].startswith("done: 1 case, ")
    quiet = invoke(*args, "-q")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")
    failing = invoke("pull", what, "--host", url, "--cases", "EMG999999999", "--out", str(out),
                     "-q")
    assert failing.exit_code == 1 and failing.stdout == ""
    lines = masked(failing.stderr, tmp_path)
    assert lines[0].startswith("EMG999999999: ")
    assert lines[-2:] == [lines[-2], f"wrote TMP/{what}.csv"]
    assert lines[-2].startswith("done: 1 case, ") and lines[-2].endswith("failed 1")


# -- listen ------------------------------------------------------------------------------------


def test_listen_show_events_is_data(tmp_path: Path) -> None:
    ledger = tmp_path / "events.sqlite"
    from batch.ledger import Ledger

    with Ledger.open(ledger) as opened:
        opened.add_event("k", "EMG100000001", {"status": "finalized", "status_change_date": "D"})
    for quiet in ([], ["-q"]):
        result = invoke("listen", "--ledger", str(ledger), "--show-events", *quiet)
        assert (result.exit_code, result.stderr) == (0, "")
        assert result.stdout == "events: 0 handled, 1 pending, 0 failed\n"


@pytest.mark.slow
@pytest.mark.parametrize("quiet", [False, True])
def test_listen_prints_the_url_on_stdout(tmp_path: Path, url: str, quiet: bool) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMG_")}
    env.update(env_for(url))
    proc = subprocess.Popen(
        [sys.executable, "-m", "batch", "listen", "--port", "0", "--ledger",
         str(tmp_path / "events.sqlite"), *(["-q"] if quiet else [])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # once bound
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert re.fullmatch(r"webhook URL for the sender: http://127\.0\.0\.1:\d+/hooks/\S{20,}\n",
                        first), first
    assert rest == ""
    if quiet:
        assert err == ""
    else:
        assert masked(err, tmp_path) == [
            "listening for webhooks at http://127.0.0.1:PORT (Ctrl-C to stop)",
            "  (a new token on every start: set EMG_WEBHOOK_TOKEN to keep the URL)",
            "stopped: 0 events (0 duplicates), 0 handled, 0 reports downloaded, 0 failures "
            "(0 left failed), 0 refused, 0 answered busy, 0 naming no case (kept)",
        ]


# -- sandbox -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("quiet", [False, True])
def test_sandbox_says_where_on_stdout_and_warnings_on_stderr(quiet: bool) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "batch", "sandbox", "--host", "127.0.0.1", "--port", "0",
         *(["-q"] if quiet else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        proc.terminate()
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert re.fullmatch(r"Emedgene sandbox at http://127\.0\.0\.1:\d+ \(user sandbox@example"
                        r"\.com, password sandbox\); Ctrl-C to stop\n", first), first
    assert rest == ""
    assert err == ("" if quiet else
                   "warning: sandbox --host is deprecated (elsewhere --host is the tenant URL); "
                   "use --bind for the address to listen on\n")


def test_every_command_says_what_goes_where_and_takes_quiet() -> None:
    from tests.test_cli_numbers import commands

    for path, command in commands(main):
        text = invoke(*path, "--help").stdout
        assert re.search(r"(On|Nothing on) stdout", text), path
        assert any("--quiet" in p.opts for p in command.params), path
