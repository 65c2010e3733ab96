"""A port already taken is the user's to fix: a plain message and exit 2, never a traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile import Hostile, run_case


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("command", [
    ("sandbox", "--port", "{port}"),
    ("listen", "--port", "{port}", "--ledger", "{dir}/events.sqlite", "--sandbox"),
])
@pytest.mark.slow
def test_a_taken_port_is_said_plainly(command: tuple[str, ...], taken_port: int,
                                      tmp_path: Path) -> None:
    args = tuple(arg.replace("{port}", str(taken_port)) for arg in command)
    outcome = run_case(Hostile("port in use", args, 2, "in use"), tmp_path, timeout=60)
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert outcome.code == 2, outcome.stderr
    assert outcome.stderr.strip() == (
        f"Error: cannot listen on 127.0.0.1:{taken_port}: address already in use "
        "(choose another --port, or 0 for any free one)")
