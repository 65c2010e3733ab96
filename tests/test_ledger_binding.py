"""A ledger belongs to one server: bound on first use, refused elsewhere once it holds work;
older ledgers take the host of their last run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from batch.errors import LedgerError
from batch.ledger import SANDBOX_HOST, Binding, Ledger, canonical_host
from batch.ledger.schema import SCHEMA_VERSION
from batch.ledger.states import State
from tests.ledgers import family

A = "https://lab-a.emg.illumina.com"
B = "https://lab-b.emg.illumina.com"


def with_a_case(ledger: Ledger, family_id: str = "F1") -> None:
    """Record a family whose case was created: work the server holds."""
    ledger.add_families([family(family_id)])
    ledger.set_step(family_id, "create", State.SUCCEEDED, case_name="EMG100000001")


def make_version_1(path: Path, *, host: str | None) -> None:
    """A ledger as emg-batch wrote it before servers were bound: no binding table, version 1,
    one run against *host*."""
    with Ledger.open(path) as ledger:
        with_a_case(ledger)
        if host is not None:
            ledger.end_run(ledger.begin_run("run", host=host), exit_code=0, counts={})
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE binding")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()


@pytest.mark.parametrize(("given", "expected"), [
    ("https://LAB-A.emg.illumina.com/", A),
    ("HTTPS://lab-a.emg.illumina.com:443", A),
    ("http://127.0.0.1:80/", "http://127.0.0.1"),
    ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
    ("http://[::1]:8765/", "http://[::1]:8765"),
    ("https://lab-a.emg.illumina.com/emg/", A + "/emg"),
    (SANDBOX_HOST, SANDBOX_HOST),
])
def test_hosts_are_compared_in_one_form(given: str, expected: str) -> None:
    assert canonical_host(given) == expected


def test_the_first_use_binds_and_the_same_host_in_another_spelling_is_the_same(
        tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        assert ledger.binding() is None
        assert ledger.bind(A, "me@example.com") == Binding(A, "me@example.com")
        ledger.add_families([family("F1")])
        assert ledger.bind("https://LAB-A.emg.illumina.com:443/", "token") == Binding(
            A, "me@example.com")
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        assert ledger.binding() == Binding(A, "me@example.com")


def test_a_ledger_with_work_refuses_another_host_and_stays_bound(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        ledger.bind(A, "me@example.com")
        with_a_case(ledger)
        with pytest.raises(LedgerError) as raised:
            ledger.bind(B, "me@example.com")
        assert str(raised.value) == (
            f"ledger {path} belongs to {A} (account me@example.com), not to {B}: nothing was "
            f"sent. Its cases are on that server; to work with {B}, start a new ledger with "
            f"--ledger NEW.sqlite, or move {path} away.")
        with pytest.raises(LedgerError):
            ledger.check_host(B)
        assert ledger.binding() == Binding(A, "me@example.com")


def test_the_sandbox_is_named_in_words(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        ledger.bind(SANDBOX_HOST, "sandbox@example.com")
        with_a_case(ledger)
        with pytest.raises(LedgerError, match=(
                r"belongs to the built-in sandbox \(--sandbox\) \(account sandbox@example.com\), "
                f"not to {A}: nothing was sent")):
            ledger.bind(A, "me@example.com")


def test_a_ledger_that_holds_nothing_takes_the_next_host(tmp_path: Path) -> None:
    """A first run that sent nothing (say, with a mistyped --host) does not tie the ledger."""
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.bind(A, "me@example.com")
        assert ledger.bind(B, "you@example.com") == Binding(B, "you@example.com")
        assert ledger.binding() == Binding(B, "you@example.com")


@pytest.mark.parametrize("state", [State.PENDING, State.FAILED])
def test_a_ledger_whose_families_reached_no_server_takes_the_next_host(
        tmp_path: Path, state: State) -> None:
    """A dry run (families pending), or a run whose every create was refused (failed), made
    nothing on the server: the ledger is not tied to it."""
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.bind(A, "me@example.com")
        ledger.begin_run("run", host=A)
        ledger.add_families([family("F1")])
        if state is State.FAILED:
            ledger.set_step("F1", "create", state, error_class="Refused", error_message="400")
        assert ledger.bind(B, "me@example.com") == Binding(B, "me@example.com")
        ledger.set_step("F1", "create", State.UNKNOWN, error_class="Unknown",
                        error_message="the answer was lost")
        with pytest.raises(LedgerError, match="belongs to"):
            ledger.check_host(A)


def test_webhook_events_are_work_too(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.bind(A, "token")
        ledger.add_event("k1", "EMG1", {"status": "finalized"})
        with pytest.raises(LedgerError, match="belongs to"):
            ledger.bind(B, "token")


def test_an_old_ledger_takes_the_host_of_its_last_run(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    make_version_1(path, host="https://LAB-A.emg.illumina.com/")
    with Ledger.open(path) as ledger:
        assert ledger.meta("schema_version") == str(SCHEMA_VERSION) == "5"
        assert ledger.binding() == Binding(A)
        with pytest.raises(LedgerError, match=f"belongs to {A}, not to {B}"):
            ledger.bind(B, "me@example.com")
        assert ledger.bind(A, "me@example.com") == Binding(A, "me@example.com")
        assert ledger.family_count() == 1


def test_an_old_ledger_that_never_ran_binds_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    make_version_1(path, host=None)
    with Ledger.open(path) as ledger:
        assert ledger.binding() is None
        assert ledger.bind(B, "token") == Binding(B, "token")


def test_runs_recorded_without_a_binding_still_bind_the_ledger(tmp_path: Path) -> None:
    """A ledger driven from Python (``run_manifest`` with no binding) is tied by its runs."""
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.begin_run("run", host=A + "/")
        with_a_case(ledger)
        assert ledger.binding() == Binding(A)
        with pytest.raises(LedgerError, match="belongs to"):
            ledger.check_host(B)
