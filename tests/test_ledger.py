"""The ledger: a real SQLite file, group commits, atomic created cases, file mode."""

from __future__ import annotations

import stat
from pathlib import Path

import anyio
import pytest

from batch.errors import LedgerError
from batch.ledger import TRANSITIONS, IllegalTransition, Ledger, Outcome, State
from tests.ledgers import family, force_state


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


def test_every_legal_transition_is_allowed_and_every_other_refused(tmp_path: Path) -> None:
    """The ledger follows the one table of transitions: a move outside it is a bug."""
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        for source in State:
            for target in State:
                fid = f"{source}-{target}"
                ledger.add_families([family(fid)])
                force_state(ledger, fid, "create", source)
                if target in TRANSITIONS[source]:
                    ledger.set_step(fid, "create", target)
                    assert ledger.family(fid).steps["create"].state is target  # type: ignore[union-attr]
                else:
                    with pytest.raises(IllegalTransition, match=f"{source} -> {target}"):
                        ledger.set_step(fid, "create", target)
                    assert ledger.family(fid).steps["create"].state is source  # type: ignore[union-attr]


def test_a_succeeded_step_is_final(tmp_path: Path) -> None:
    assert TRANSITIONS[State.SUCCEEDED] == frozenset()
    assert all(State.PENDING not in TRANSITIONS[s] for s in State if s is not State.SENDING)


async def test_named_transitions_own_their_commit(tmp_path: Path) -> None:
    """mark_sending and record_failed are committed when they return; a final create is
    queued for the next commit; record_unknown is committed at once, without awaiting."""
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        ledger.add_families([family(f"F{i}", i) for i in range(3)])
        await ledger.mark_sending("F0", "create", run_id=1, proband_sample="S-EDITED")
        await ledger.record_created("F0", "EMG1", final=True)
        ledger.record_unknown("F1", "create", Outcome(kind="AmbiguousCreate", message="lost"))
        with Ledger.open(path, create=False) as reader:
            f0, f1 = reader.family("F0"), reader.family("F1")
            assert f0 is not None and f1 is not None
            assert (f0.steps["create"].state, f0.proband_sample) == (State.SENDING, "S-EDITED")
            assert f1.steps["create"].state is State.UNKNOWN
        await ledger.record_failed("F2", "create", Outcome(kind="BuildError", message="x"),
                                   rows='[{"number": 3, "cells": {}}]')
        with Ledger.open(path, create=False) as reader:
            assert reader.family("F0").case_name == "EMG1"  # type: ignore[union-attr]
            assert reader.family_rows("F2") == [{"number": 3, "cells": {}}]


def test_released_reservations_are_pending_with_their_attempt_taken_back(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.add_families([family("A"), family("B", 1)])
        ledger.reserve([("A", None), ("B", None)], "create", run_id=1)
        ledger.release(["A"], "create")
        a, b = ledger.family("A"), ledger.family("B")
        assert a is not None and b is not None
        assert (a.steps["create"].state, a.steps["create"].attempts) == (State.PENDING, 0)
        assert (b.steps["create"].state, b.steps["create"].attempts) == (State.SENDING, 1)
        with pytest.raises(IllegalTransition):
            ledger.record_refused("A", "create", Outcome(kind="AuthError", message="no"))
