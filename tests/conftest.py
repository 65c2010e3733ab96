"""Shared fixtures: the conformance fixture file and a running sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from batch.sandbox import SandboxConfig, run_sandbox
from tests.corpus import FIXTURE

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def fixture_path() -> Path:
    """Path of the conformance ``fixture.json``."""
    return FIXTURE


@pytest.fixture
async def sandbox(fixture_path: Path) -> AsyncIterator[str]:
    """URL of a fresh sandbox on loopback, loaded with the conformance fixture."""
    async with run_sandbox(SandboxConfig(fixture=fixture_path)) as running:
        yield running.url
