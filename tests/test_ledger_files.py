"""The ledger's files: 0600 on open (with -wal and -shm), whatever the umask; foreign files
refused untouched, by name; the lock file 0600 and gone after the run."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from batch.cli import main
from batch.errors import LedgerError
from batch.ledger import Ledger
from batch.ledger.schema import SCHEMA_VERSION
from tests.ledgers import family
from tests.manifests import write_manifest


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_000() -> Iterator[None]:
    """Every file the process makes is as open as its maker asks."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def companions(path: Path) -> list[Path]:
    return [path.with_name(path.name + s) for s in ("-wal", "-shm")]


def test_an_existing_0644_ledger_and_its_wal_files_become_0600(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        ledger.add_families([family("F1")])
    holder = sqlite3.connect(path)  # another reader keeps the -wal and -shm files on disk
    try:
        holder.execute("SELECT count(*) FROM families").fetchone()
        for file in (path, *companions(path)):
            assert file.exists()
            file.chmod(0o644)
        with Ledger.open(path) as ledger:
            assert [mode(f) for f in (path, *companions(path))] == [0o600, 0o600, 0o600]
            assert ledger.family_count() == 1
    finally:
        holder.close()


def test_a_new_ledger_its_wal_files_and_its_lock_are_0600_under_umask_000(
        tmp_path: Path, umask_000: None) -> None:
    path = tmp_path / "new" / "l.sqlite"
    with Ledger.open(path) as ledger:
        ledger.lock()
        ledger.add_families([family("F1")])
        lock = tmp_path / "new" / "l.sqlite.lock"
        assert [mode(f) for f in (path, *companions(path), lock)] == [0o600] * 4
        assert mode(path.parent) == 0o700
        assert lock.read_text(encoding="ascii") == str(os.getpid())


def test_an_open_lock_file_left_by_an_older_version_becomes_0600(
        tmp_path: Path, umask_000: None) -> None:
    path = tmp_path / "l.sqlite"
    lock = tmp_path / "l.sqlite.lock"
    lock.write_text("12345", encoding="ascii")
    lock.chmod(0o666)
    with Ledger.open(path) as ledger:
        ledger.lock()
        assert mode(lock) == 0o600
        assert lock.read_text(encoding="ascii") == str(os.getpid())
    assert not lock.exists()


def test_the_lock_file_is_removed_after_the_run_and_the_lock_taken_again(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as first:
        first.lock()
        with Ledger.open(path) as second, pytest.raises(LedgerError, match=(
                rf"ledger {path} is in use by another emg-batch process \(pid {os.getpid()}\)")):
            second.lock()
    assert not (tmp_path / "l.sqlite.lock").exists()
    with Ledger.open(path) as again:
        again.lock()
        assert (tmp_path / "l.sqlite.lock").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.sqlite"]


def test_a_lock_file_removed_by_its_holder_is_never_shared(tmp_path: Path) -> None:
    """A process that opened the lock file just before its holder removed it must not think
    it holds the lock on the file that replaced it."""
    from batch.ledger import files as lock

    path = tmp_path / "l.sqlite"
    first = lock.acquire(path)
    stale = os.open(lock.lock_path(path), os.O_RDWR)  # opened before the holder let go
    lock.release(first, path)
    second = lock.acquire(path)  # makes a new file
    try:
        # the late process locks its descriptor, then finds its file is no longer the lock file
        assert lock._take(stale, lock.lock_path(path), path) is False
        assert os.stat(lock.lock_path(path)).st_ino == os.fstat(second).st_ino
    finally:
        os.close(stale)
        lock.release(second, path)


def test_a_lock_file_that_is_a_link_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious data\n")
    victim.chmod(0o644)
    (tmp_path / "l.sqlite.lock").symlink_to(victim)
    with Ledger.open(tmp_path / "l.sqlite") as ledger, pytest.raises(LedgerError) as raised:
        ledger.lock()
    assert str(raised.value) == (
        f"cannot lock ledger {tmp_path / 'l.sqlite'}: {tmp_path / 'l.sqlite.lock'} is a "
        "symbolic link; remove it and rerun")
    assert victim.read_text() == "precious data\n"
    assert mode(victim) == 0o644


def test_a_ledger_reached_through_a_dangling_link_is_made_private(tmp_path: Path,
                                                                  umask_000: None) -> None:
    (tmp_path / "elsewhere").mkdir()
    target = tmp_path / "elsewhere" / "led.sqlite"
    (tmp_path / "l.sqlite").symlink_to(target)
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        assert ledger.family_count() == 0
    assert mode(target) == 0o600


def test_a_pre_created_empty_file_is_a_new_ledger(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    path.touch()
    path.chmod(0o644)
    with Ledger.open(path) as ledger:
        assert ledger.family_count() == 0
        assert ledger.meta("schema_version") == str(SCHEMA_VERSION)
    assert mode(path) == 0o600


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"Family Id,Relation\nF1,proband\n")
    path.chmod(0o644)
    with pytest.raises(LedgerError) as raised:
        Ledger.open(path)
    assert str(raised.value) == (
        f"{path} is not an emg-batch ledger (not a SQLite database); it was left as it is. "
        "Pass another --ledger PATH, or move that file away.")
    assert path.read_bytes() == b"Family Id,Relation\nF1,proband\n"
    assert mode(path) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_sqlite_database_of_another_program_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        conn.execute("CREATE TABLE samples (name TEXT)")
    conn.close()
    path.chmod(0o644)
    before = path.read_bytes()
    with pytest.raises(LedgerError) as raised:
        Ledger.open(path)
    assert str(raised.value) == (
        f"{path} is a SQLite database but not an emg-batch ledger; it was left as it is. "
        "Pass another --ledger PATH, or move that file away.")
    assert path.read_bytes() == before
    assert mode(path) == 0o644
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert names == {"meta", "samples"}


@pytest.mark.parametrize("value", ["one", "", "1.0", "-1", "0", "²", "9" * 200])
def test_a_schema_version_that_is_not_a_number_is_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        ledger.set_meta("schema_version", value)
    with pytest.raises(LedgerError) as raised:
        Ledger.open(path)
    message = str(raised.value)
    assert message.startswith(f"{path} has a schema_version of ")
    assert message.endswith(", not a number: it was not written by emg-batch. Pass another "
                            "--ledger PATH, or move that file away.")
    assert len(message) < len(str(path)) + 250


def test_a_folder_in_place_of_the_ledger_is_refused(tmp_path: Path) -> None:
    (tmp_path / "l.sqlite").mkdir()
    with pytest.raises(LedgerError, match="is not a file: pass --ledger with a file name"):
        Ledger.open(tmp_path / "l.sqlite")


def test_a_ledger_whose_first_open_stopped_before_its_version_is_taken_as_version_1(
        tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        ledger.add_families([family("F1")])
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM meta")
        conn.execute("DROP TABLE binding")
    conn.close()
    with Ledger.open(path) as ledger:
        assert ledger.meta("schema_version") == str(SCHEMA_VERSION)
        assert ledger.family_count() == 1


FOREIGN = [b"not a ledger at all\n", b"SQLite format 3\x00" + b"\xff" * 84]


@pytest.mark.parametrize("content", FOREIGN)
def test_status_and_run_on_a_foreign_file_exit_2_naming_it(tmp_path: Path, content: bytes) -> None:
    ledger = tmp_path / "foreign.sqlite"
    ledger.write_bytes(content)
    manifest = write_manifest(tmp_path / "m.csv", 1)
    runner = CliRunner()
    for args in (["status", "--ledger", str(ledger)],
                 ["run", str(manifest), "--sandbox", "--ledger", str(ledger)]):
        result = runner.invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith((
            f"Error: {ledger} is not an emg-batch ledger",
            f"Error: {ledger} cannot be read as a ledger (file is not a database); it was left "
            "as it is."))
        assert "Traceback" not in result.output
        assert ledger.read_bytes() == content


def test_a_manifest_refused_before_sending_leaves_no_new_ledger(tmp_path: Path) -> None:
    """Nothing sent, nothing recorded: no ledger (nor lock) is left next to the manifest; a
    ledger that was there already stays."""
    manifest = write_manifest(tmp_path / "bad.csv", 2, prefix="BAD")
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(",M,", ",X,", 1),
                        encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(manifest), "--sandbox"], catch_exceptions=False)
    assert result.exit_code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "bad_results.csv"]
    kept = tmp_path / "kept.sqlite"
    with Ledger.open(kept):
        pass
    result = runner.invoke(main, ["run", str(manifest), "--sandbox", "--ledger", str(kept)],
                           catch_exceptions=False)
    assert result.exit_code == 2
    assert kept.exists() and not (tmp_path / "kept.sqlite.lock").exists()


def test_opening_a_ledger_of_this_version_writes_nothing(tmp_path: Path) -> None:
    """``status`` reads a ledger that a running ``run`` is writing to: opening it takes no
    write lock (with one held elsewhere, it would wait and fail)."""
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        ledger.add_families([family("F1")])
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE families SET note = 'x'")
        with Ledger.open(path, create=False) as reader:
            assert reader.family_count() == 1
    finally:
        writer.execute("ROLLBACK")
        writer.close()
