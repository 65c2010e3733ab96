"""Shared fixtures: the conformance fixture file and a running sandbox."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from batch.sandbox import SandboxConfig, SandboxThread, demo_fixture_path, run_sandbox
from tests.corpus import FIXTURE

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _no_user_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test reads the tenants of the person running the suite (docs/tenants.md)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
    patch.delenv("EMG_TENANT", raising=False)
    yield
    patch.undo()


@pytest.fixture(scope="session")
def fixture_path() -> Path:
    """Path of the conformance ``fixture.json``."""
    return FIXTURE


@pytest.fixture
async def sandbox(fixture_path: Path) -> AsyncIterator[str]:
    """URL of a fresh sandbox on loopback, loaded with the conformance fixture."""
    async with run_sandbox(SandboxConfig(fixture=fixture_path)) as running:
        yield running.url


@pytest.fixture
def delivering() -> Iterator[SandboxThread]:
    """A sandbox thread with the demo fixture that delivers a new case at once (so a status
    can be set on it)."""
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path(), advance_after=0)) as running:
        yield running


@pytest.fixture
def slow_sandbox() -> Iterator[str]:
    """``emg-batch sandbox --latency-ms 150`` in its own process; its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "batch", "sandbox", "--port", "0",
                             "--latency-ms", "150"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        yield next(w for w in line.split() if w.startswith("http://127.0.0.1:"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
