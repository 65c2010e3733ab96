"""Hostile inputs as data: what a user feeds the command line, and what must come back.

Each ``Hostile`` case writes its files into an empty folder, runs ``emg-batch`` there as a
user would, and states the exit code and a phrase of the message. No case may end in a
traceback. The cases live in ``hostile_manifests.py`` (files) and ``hostile_cli.py``
(options and the command line); ``test_hostile_inputs.py`` runs them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEADER = ("Family Id,Case Type,Files Names,Sample Type,BioSample Name,Storage Provider Id,"
          "Relation,Sex,Phenotypes")


def csv_file(name: str, text: str) -> Callable[[Path], None]:
    """A setup that writes *text* (UTF-8) to *name*."""
    def write(folder: Path) -> None:
        (folder / name).write_text(text, encoding="utf-8")
    return write


def nothing(folder: Path) -> None:
    """A setup that writes nothing."""


@dataclass(frozen=True, slots=True)
class Hostile:
    """One hostile input: files, the command (``{dir}`` is the folder), what must come back."""

    name: str
    args: tuple[str, ...]
    code: int
    phrase: str
    setup: Callable[[Path], None] = nothing
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the command did."""

    code: int
    stdout: str
    stderr: str


def run_case(case: Hostile, folder: Path, *, timeout: float = 120) -> Outcome:
    """Set the case up in *folder* and run it; its exit code and output."""
    case.setup(folder)
    args = [arg.replace("{dir}", str(folder)) for arg in case.args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMG_")}
    env.update(PYTHONPATH=str(REPO), **case.env)
    done = subprocess.run([sys.executable, "-m", "batch", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return Outcome(done.returncode, done.stdout, done.stderr)
