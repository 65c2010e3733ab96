"""Every output location is tried before a run sends anything (exit 3, the path named,
nothing created on the server); an output that fails after the run never leaves exit 0 in
the ledger; every writer's ``OSError`` becomes one clear message.

The suite runs as root in CI, where ``chmod`` does not keep anyone out: unwritable places
are made of a regular file where a folder should be, a folder where a file should be, and
``/proc``. The ``chmod 555`` cases are extra, for other users.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import xlsxwriter.exceptions
from click.testing import Result

from batch import jobs
from batch.api import Credentials
from batch.errors import OutputError
from batch.ledger import Ledger
from batch.outputs import write_table
from batch.outputs.files import writing
from batch.run import RunOptions
from batch.run.progress import SilentProgress
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxThread,
)
from tests.cli_sandbox import api_requests, invoke
from tests.manifests import write_manifest

HINT = "Hint: free space or fix permissions, then rerun the same command\n"
AS_ROOT = os.geteuid() == 0






def plain_file(path: Path) -> Path:
    path.write_text("a file, not a folder\n", encoding="utf-8")
    return path


def assert_refused(result: Result, message: str, delivering: SandboxThread) -> None:
    assert (result.exit_code, result.stdout) == (3, ""), result.output
    assert result.stderr == f"Error: {message}\n{HINT}"
    assert api_requests(delivering) == {}
    assert delivering.state.cases == {}


def test_a_ledger_folder_that_is_a_file_stops_the_run_before_sending(
        tmp_path: Path, delivering: SandboxThread) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 2, prefix="W")
    folder = plain_file(tmp_path / "runs")
    result = invoke("run", str(manifest), "--ledger", str(folder / "m.sqlite"), url=delivering.url)
    assert_refused(result, f"cannot write {folder}: it is not a folder", delivering)


def test_an_out_dir_under_a_file_stops_the_run_before_the_ledger_is_made(
        tmp_path: Path, delivering: SandboxThread) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 2, prefix="W")
    out = plain_file(tmp_path / "out") / "sub"
    result = invoke("run", str(manifest), "--out-dir", str(out), url=delivering.url)
    assert_refused(result, f"cannot write {out}: Not a directory", delivering)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv", "out"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_an_out_dir_under_proc_stops_the_run_before_sending(
        tmp_path: Path, delivering: SandboxThread) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 1, prefix="W")
    result = invoke("run", str(manifest), "--out-dir", "/proc/emg-batch-out", url=delivering.url)
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: cannot write /proc/emg-batch-out: ")
    assert api_requests(delivering) == {}


class SpoilsTheOutputs(SilentProgress):
    """Puts a file where the output folder was once the run is over: outputs that fail
    after every case was created (as a disk that fills up would)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def close(self) -> None:
        self.out_dir.rmdir()
        plain_file(self.out_dir)


def test_an_output_failing_after_the_run_never_leaves_exit_0_in_the_ledger(
        tmp_path: Path, delivering: SandboxThread) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 2, prefix="W")
    out_dir = tmp_path / "out"
    target = jobs.Target(host=delivering.url,
                         credentials=Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD))

    async def main() -> None:
        await jobs.run_job(manifest, target=target, connection=jobs.Connection(),
                           options=RunOptions(), out_dir=out_dir,
                           progress=SpoilsTheOutputs(out_dir))

    with pytest.raises(OutputError) as raised:
        anyio.run(main)
    assert str(raised.value) == (
        f"cannot write {out_dir}: it is not a folder; the run itself ended (2 cases created, "
        f"0 families failed), and the ledger {tmp_path / 'm.ledger.sqlite'} records every "
        "step: rerunning the same command writes the outputs again and creates nothing twice")
    assert len(delivering.state.cases) == 2
    with Ledger.open(tmp_path / "m.ledger.sqlite", create=False) as ledger:
        runs = ledger.runs()
    assert [(r.command, r.exit_code) for r in runs] == [("run", 3)]
    assert not list(tmp_path.glob("*.lock"))


def test_validate_of_an_invalid_manifest_whose_results_cannot_be_written(
        tmp_path: Path) -> None:
    """The problems still come out, then why the results file is missing; exit 2."""
    manifest = write_manifest(tmp_path / "bad.csv", 1, prefix="V")
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("HP:0001250", "0001250"),
                        encoding="utf-8")
    results = tmp_path / "bad_results.csv"
    results.mkdir()
    result = invoke("validate", str(manifest))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert any("0001250" in line for line in lines[:-2])
    assert lines[-2:] == [
        f"Error: bad.csv: 1 error; the results file with them was not written: cannot write "
        f"{results}: Is a directory", "Hint: fix the manifest; nothing was sent"]
    assert "Traceback" not in result.output


def test_export_and_pull_tables_to_unwritable_places_are_one_clear_error(
        tmp_path: Path) -> None:
    blocker = plain_file(tmp_path / "blocker")
    with Ledger.open(tmp_path / "l.sqlite"):
        pass
    for out in ("x.csv", "x.xlsx", "x.parquet"):
        result = invoke("export", "--ledger", str(tmp_path / "l.sqlite"), "--out",
                        str(blocker / out))
        assert (result.exit_code, result.stderr) == (
            3, f"Error: cannot write {blocker}: it is not a folder\n{HINT}")
    for suffix in (".csv", ".xlsx", ".parquet"):
        with pytest.raises(OutputError, match=f"cannot write {blocker}: it is not a folder"):
            write_table([{"case": "EMG1"}], blocker / f"t{suffix}", columns=["case"])


def test_an_os_error_a_library_wraps_is_translated_too(tmp_path: Path) -> None:
    """xlsxwriter reports a file it cannot make as FileCreateError(OSError)."""
    out = tmp_path / "book.xlsx"
    wrapped = xlsxwriter.exceptions.FileCreateError(PermissionError(13, "Permission denied"))
    with pytest.raises(OutputError, match=f"^cannot write {out}: Permission denied$"), \
            writing(out):
        raise wrapped
    with pytest.raises(ValueError, match="a bug"), writing(out):
        raise ValueError("a bug")


# -- chmod, for users other than root ----------------------------------------------------------


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "ro"
    folder.mkdir()
    yield folder
    folder.chmod(0o755)


@pytest.mark.skipif(AS_ROOT, reason="root writes into chmod 555 folders")
def test_a_read_only_manifest_folder_stops_the_run_before_sending(
        read_only: Path, delivering: SandboxThread) -> None:
    manifest = write_manifest(read_only / "m.csv", 2, prefix="W")
    read_only.chmod(0o555)
    result = invoke("run", str(manifest), url=delivering.url)
    assert_refused(result, f"cannot write {read_only / 'm.ledger.sqlite'}: Permission denied",
                   delivering)


@pytest.mark.skipif(AS_ROOT, reason="root writes into chmod 555 folders")
def test_a_read_only_manifest_folder_with_the_ledger_elsewhere(
        read_only: Path, tmp_path: Path, delivering: SandboxThread) -> None:
    manifest = write_manifest(read_only / "m.csv", 2, prefix="W")
    read_only.chmod(0o555)
    result = invoke("run", str(manifest), "--ledger", str(tmp_path / "l.sqlite"),
                    url=delivering.url)
    assert_refused(result, f"cannot write {read_only / 'm_results.csv'}: Permission denied",
                   delivering)


@pytest.mark.skipif(AS_ROOT, reason="root writes into chmod 555 folders")
def test_validate_in_a_read_only_folder(read_only: Path) -> None:
    manifest = write_manifest(read_only / "bad.csv", 1, prefix="V")
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("HP:0001250", "0001250"),
                        encoding="utf-8")
    read_only.chmod(0o555)
    result = invoke("validate", str(manifest))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-2] == (
        f"Error: bad.csv: 1 error; the results file with them was not written: cannot write "
        f"{read_only / 'bad_results.csv'}: Permission denied")
    assert "Traceback" not in result.output


@pytest.mark.skipif(AS_ROOT, reason="root writes into read-only files")
def test_a_read_only_ledger_file_stops_the_run_before_sending(
        tmp_path: Path, delivering: SandboxThread) -> None:
    manifest = write_manifest(tmp_path / "m.csv", 1, prefix="W")
    ledger = tmp_path / "m.ledger.sqlite"
    with Ledger.open(ledger):
        pass
    ledger.chmod(0o400)
    result = invoke("run", str(manifest), url=delivering.url)
    assert_refused(result, f"cannot write {ledger}: Permission denied", delivering)


@pytest.mark.slow
def test_listen_with_a_ledger_folder_that_is_a_file_exits_3_before_listening(
        tmp_path: Path, delivering: SandboxThread) -> None:
    import subprocess
    import sys

    folder = plain_file(tmp_path / "events")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMG_")}
    env.update(EMG_HOST=delivering.url, EMG_USERNAME=DEFAULT_USER, EMG_PASSWORD=DEFAULT_PASSWORD)
    done = subprocess.run(
        [sys.executable, "-m", "batch", "listen", "--port", "0", "--ledger",
         str(folder / "events.sqlite")], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (
        3, f"Error: cannot write {folder}: it is not a folder\n{HINT}")
    assert api_requests(delivering) == {}
