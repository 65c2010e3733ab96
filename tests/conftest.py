"""Shared fixtures: the conformance fixture file and a running sandbox."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from batch.sandbox import SandboxConfig, run_sandbox

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The shared directory: ``$EMG_SHARED``, else ``../shared`` next to the repository."""
    return Path(os.environ.get("EMG_SHARED") or REPO.parent / "shared")


@pytest.fixture(scope="session")
def fixture_path() -> Path:
    """Path of the conformance ``fixture.json``."""
    path = shared_dir() / "conformance" / "official-cli-36" / "fixture.json"
    if not path.is_file():
        pytest.skip(f"conformance fixture not found: {path}")
    return path


@pytest.fixture
async def sandbox(fixture_path: Path) -> AsyncIterator[str]:
    """URL of a fresh sandbox on loopback, loaded with the conformance fixture."""
    async with run_sandbox(SandboxConfig(fixture=fixture_path)) as running:
        yield running.url
