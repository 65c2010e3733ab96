"""What ``run`` tells: why families failed, each kind of stop in its own words with its own
hint, what "updated" means, the manifest's warnings before anything is sent, progress that
counts from a resume. The command line against a sandbox on loopback, exact output."""

from __future__ import annotations

import io
import re
import socket
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from batch import jobs
from batch.cli import main
from batch.errors import OutputError
from batch.run.progress import LineProgress
from batch.sandbox import SandboxThread
from tests.cli_sandbox import api_requests, invoke
from tests.manifests import write_manifest
from tests.test_run_warnings import DUPLICATED, with_columns


def lines(text: str, tmp: Path) -> list[str]:
    """Lines with the folder and times masked."""
    text = re.sub(r"elapsed \d+\.\ds", "elapsed Xs", text.replace(str(tmp), "TMP"))
    return text.splitlines()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_refused_login_is_told_as_a_stop_and_writes_nothing(
        tmp_path: Path, delivering: SandboxThread) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 2, prefix="PW")
    env = {"EMG_USERNAME": "sandbox@example.com", "EMG_PASSWORD": "wrong", "EMG_TOKEN": "",
           "EMG_HOST": delivering.url}
    result = CliRunner().invoke(main, ["run", str(manifest)], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 3
    assert lines(result.stderr, tmp_path) == [
        "stopped: the server refused the login for sandbox@example.com: Invalid credentials; "
        "nothing was sent",
        "hint: check the credentials (EMG_USERNAME and EMG_PASSWORD, or EMG_TOKEN), then rerun "
        "the same command"]
    assert files(tmp_path) == ["m.csv"]  # no ledger, no results file, no empty workbook
    assert delivering.state.cases == {}


@pytest.mark.slow
def test_an_unreachable_server_is_told_as_a_stop_and_writes_nothing(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 2, prefix="UR")
    result = invoke("run", str(manifest), url=f"http://127.0.0.1:{closed_port()}")
    assert result.exit_code == 3
    first, hint = lines(result.stderr, tmp_path)
    assert first.startswith("stopped: the server did not answer the look-ups made before the "
                            "first create, so nothing was sent: gave up after retries: cannot "
                            "connect to the server")
    assert hint == ("hint: check the host (--host or EMG_HOST) and that the server answers "
                    "(emg-batch doctor), then rerun the same command")
    assert files(tmp_path) == ["m.csv"]


def test_max_failures_says_why_and_what_was_not_attempted(tmp_path: Path,
                                                          delivering: SandboxThread) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 6, prefix="MF",
                              extra={"Assign To": ["nobody@example.com"] * 6})
    result = invoke("run", str(manifest), "--max-failures", "1", "--concurrency", "1",
                    url=delivering.url)
    assert result.exit_code == 3
    assert lines(result.stderr, tmp_path) == [
        "stopping: 1 family failed (--max-failures 1)",
        "stopped: 6 families: created 1, adopted 0, updated 0, skipped 0, failed 1, unknown 0",
        "failures by reason, most frequent first:",
        "  1 x the assignment was not sent: unknown user e-mail(s): nobody@example.com "
        "(family MF-000000)",
        "why: 1 family failed (--max-failures 1)",
        "not attempted: 5 families (the run stopped before them)",
        "requests 5, retries 0, 429s 0, elapsed Xs",
        "results: TMP/m_results.csv",
        "review: TMP/m_review.xlsx",
        "ledger: TMP/m.ledger.sqlite",
        "hint: fix what failed and rerun the same command; created cases are never created "
        "again"]


def test_updated_says_what_was_updated(tmp_path: Path, delivering: SandboxThread) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 3, prefix="UP", extra={
        "Assign To": ["analyst@example.com", "analyst@example.com", ""],
        "Set Status": ["custom_status_1", "", ""]})
    result = invoke("run", str(manifest), url=delivering.url)
    assert result.exit_code == 0, result.output
    assert lines(result.stderr, tmp_path)[:2] == [
        "done: 3 families: created 3, adopted 0, updated 2, skipped 0, failed 0, unknown 0",
        "updated: 2 assignments, 1 status change"]


class NotesWhenSending(LineProgress):
    """Plain progress that also marks, in its stream, when the run phase begins."""

    def phase(self, name: str, *, total: int, done: int = 0) -> None:
        if name == "running":
            self.note("-- sending --")
        super().phase(name, total=total, done=done)


def test_warnings_come_before_anything_is_sent(tmp_path: Path, delivering: SandboxThread,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_manifest(tmp_path / "source.csv", 1, prefix="WB")
    manifest = with_columns(source, tmp_path / "m.csv", {"BioSample Name": "{sample}"})
    monkeypatch.setattr(sys.modules["batch.cli.main"], "for_terminal",
                        lambda quiet: NotesWhenSending(sys.stderr, interval=3600))
    result = invoke("run", str(manifest), url=delivering.url)
    assert result.exit_code == 0, result.output
    assert lines(result.stderr, tmp_path)[:4] == [
        "1 warning:", DUPLICATED, "-- sending --",
        "done: 1 family: created 1, adopted 0, updated 0, skipped 0, failed 0, unknown 0"]


def test_an_output_failing_after_creates_says_what_was_created(
        tmp_path: Path, delivering: SandboxThread, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that fills up once the cases are created: the cases and the ledger are named."""
    manifest = write_manifest(tmp_path / "m.csv", 2, prefix="FD")

    def full(*_: object, **__: object) -> Path:
        raise OutputError(f"cannot write {tmp_path / 'm_review.xlsx'}: No space left on device")

    monkeypatch.setattr(jobs.run, "write_review", full)
    result = invoke("run", str(manifest), url=delivering.url)
    assert result.exit_code == 3
    assert lines(result.stderr, tmp_path) == [
        "Error: cannot write TMP/m_review.xlsx: No space left on device; the run itself ended "
        "(2 cases created, 0 families failed), and the ledger TMP/m.ledger.sqlite records "
        "every step: rerunning the same command writes the outputs again and creates nothing "
        "twice",
        "Hint: free space or fix permissions, then rerun the same command"]
    assert len(delivering.state.cases) == 2
    assert api_requests(delivering)


def test_line_progress_labels_its_times_and_counts_from_a_resume() -> None:
    stream = io.StringIO()
    progress = LineProgress(stream, interval=0)
    progress.phase("running", total=2000, done=716)
    progress.advance(failed=0, requests=2)
    line = stream.getvalue().strip()
    assert re.fullmatch(r"running: 717/2,000 families, 0 failed, [\d.]+ req/s, elapsed "
                        r"\d:\d\d:\d\d, remaining \d+:\d\d:\d\d", line), line


def test_a_resume_says_how_far_it_is(tmp_path: Path, delivering: SandboxThread) -> None:
    first = write_manifest(tmp_path / "m.csv", 4, prefix="RS")
    assert invoke("run", str(first), url=delivering.url).exit_code == 0
    more = write_manifest(tmp_path / "m.csv", 6, prefix="RS")
    result = invoke("run", str(more), url=delivering.url)
    assert result.exit_code == 0, result.output
    out = lines(result.stderr, tmp_path)
    assert out[0] == "resuming: 4 of 6 families done"
    assert out[1] == ("done: 6 families: created 2, adopted 0, updated 0, skipped 4, failed 0, "
                      "unknown 0")
