"""The ledger: a real SQLite file, group commits, atomic created cases, file mode."""

from __future__ import annotations

import stat
from pathlib import Path

import anyio
import pytest

from batch.errors import LedgerError
from batch.ledger import Ledger, State
from tests.ledgers import family


def test_file_mode_is_0600(tmp_path: Path) -> None:
    """The ledger holds patient sample names: only its owner may read it."""
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        assert stat.S_IMODE((tmp_path / "l.sqlite").stat().st_mode) == 0o600
        assert ledger.family_count() == 0


async def test_concurrent_writes_share_one_commit(tmp_path: Path) -> None:
    """Writes made at the same moment by many workers are committed together."""
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.add_families([family(f"F{i}", i, sample=f"S{i}") for i in range(32)])
        async with anyio.create_task_group() as tg:
            for i in range(32):
                tg.start_soon(ledger.durably, ledger.set_step, f"F{i}", "create", State.SENDING)
        assert ledger.commits == 1
        assert ledger.step_counts() == {"create": {"sending": 32}}


async def test_queued_writes_ride_with_the_next_commit_or_close(tmp_path: Path) -> None:
    """``later`` returns at once; the next group commit, ``flush`` or ``close`` commits it."""
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        ledger.add_families([family(f"F{i}", i, sample=f"S{i}") for i in range(3)])
        ledger.later(ledger.set_step, "F0", "create", State.SUCCEEDED, case_name="EMG000000001")
        with Ledger.open(path, create=False) as reader:  # another connection sees nothing yet
            assert reader.step_counts() == {"create": {"pending": 3}}
        await ledger.durably(ledger.set_step, "F1", "create", State.SENDING)
        assert ledger.commits == 1
        assert ledger.step_counts() == {"create": {"succeeded": 1, "sending": 1, "pending": 1}}
        ledger.later(ledger.set_step, "F2", "create", State.SUCCEEDED, case_name="EMG000000002")
    with Ledger.open(path) as ledger:  # closing committed the last one
        assert ledger.family("F2").case_name == "EMG000000002"


async def test_a_failed_group_commit_fails_every_writer(tmp_path: Path) -> None:
    """When the commit fails, every writer in it hears so, and nothing of it is kept."""
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.add_families([family("A", 0), family("B", 1, sample="T")])
        errors: list[BaseException] = []

        def broken() -> None:
            raise LedgerError("database or disk is full")

        async def write(fn: object, *args: object) -> None:
            try:
                await ledger.durably(fn, *args)  # type: ignore[arg-type]
            except LedgerError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(write, ledger.set_step, "A", "create", State.SENDING)
            tg.start_soon(write, broken)
        assert len(errors) == 2
        assert ledger.step_counts() == {"create": {"pending": 2}}


def test_created_case_is_stored_with_its_step_atomically(tmp_path: Path) -> None:
    """One statement marks the create succeeded and stores the case and hash on the family."""
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.add_families([family("A", 0, row_hash="hash-1")])
        ledger.set_step("A", "create", State.SUCCEEDED, case_name="EMG100000001", http_status=201)
        record = ledger.family("A")
        assert record is not None
        assert (record.case_name, record.created_hash) == ("EMG100000001", "hash-1")
        assert record.steps["create"].state is State.SUCCEEDED


def test_first_attempt_time_is_kept(tmp_path: Path) -> None:
    """Reconciliation compares the server's creation time with the first attempt."""
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.add_families([family("A", 0)])
        ledger.set_step("A", "create", State.SENDING, attempt=True)
        first = ledger.family("A").steps["create"].started_at  # type: ignore[union-attr]
        ledger.set_step("A", "create", State.SENDING, attempt=True)
        step = ledger.family("A").steps["create"]  # type: ignore[union-attr]
        assert step.started_at == first
        assert step.attempts == 2


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A ledger written by a newer emg-batch is refused with a way out."""
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        ledger.set_meta("schema_version", "99")
    with pytest.raises(LedgerError, match="schema 99"):
        Ledger.open(path)
