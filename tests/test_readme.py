"""The Python examples of the README and docs/ run as written, against a sandbox on loopback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    SandboxThread,
    demo_fixture_path,
)

REPO = Path(__file__).resolve().parent.parent
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def python_blocks() -> list[str]:
    return [block for document in DOCUMENTS
            for block in PYTHON_BLOCK.findall(document.read_text(encoding="utf-8"))]


def test_the_readme_has_python_examples() -> None:
    assert len(python_blocks()) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("number", range(len(python_blocks())))
def test_python_example_runs(number: int, tmp_path: Path) -> None:
    shutil.copy(REPO / "inputs" / "example.csv", tmp_path / "cases.csv")
    config = SandboxConfig(fixture=demo_fixture_path(), advance_after=0.0)
    with SandboxThread(config) as sandbox:
        env = {**os.environ, "EMG_HOST": sandbox.url, "EMG_USERNAME": DEFAULT_USER,
               "EMG_PASSWORD": DEFAULT_PASSWORD, "PYTHONPATH": str(REPO)}
        env.pop("EMG_TOKEN", None)
        done = subprocess.run([sys.executable, "-c", python_blocks()[number]], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
