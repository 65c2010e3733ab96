"""Progress while running: a rich bar on a terminal, plain periodic lines otherwise.

Progress goes to stderr; data (summaries, ``--json``) goes to stdout.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.progress import TaskID


class Progress(Protocol):
    """What the runner reports while it works."""

    def phase(self, name: str, *, total: int, done: int = 0) -> None:
        """A new phase (validating, running) over *total* families, *done* of them already
        (a resume counts from there)."""

    def advance(self, *, failed: int, requests: int = 0) -> None:
        """One family finished; counts so far of failed (or unknown) families and requests."""

    def note(self, text: str) -> None:
        """A one-line message for the operator."""

    def close(self) -> None:
        """The run is over."""


class SilentProgress:
    """Reports nothing (library use, ``--quiet``)."""

    def phase(self, name: str, *, total: int, done: int = 0) -> None:
        """Ignore."""

    def advance(self, *, failed: int, requests: int = 0) -> None:
        """Ignore."""

    def note(self, text: str) -> None:
        """Ignore."""

    def close(self) -> None:
        """Ignore."""


class LineProgress:
    """Plain lines every *interval* seconds, for logs and pipes."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self._requests = 0
        self._requests_at_start = 0
        self._name = ""
        self._total = 0
        self._done = 0
        self._done_at_start = 0
        self._failed = 0
        self._start = time.monotonic()
        self._last = 0.0

    def phase(self, name: str, *, total: int, done: int = 0) -> None:
        """Start counting a phase."""
        self._name, self._total, self._done = name, total, done
        self._done_at_start = done
        self._start = self._last = time.monotonic()
        self._requests_at_start = self._requests

    def advance(self, *, failed: int, requests: int = 0) -> None:
        """Count one family; print when the interval has passed."""
        self._done += 1
        self._failed = failed
        self._requests = requests
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = (self._done - self._done_at_start) / elapsed
        left = (self._total - self._done) / rate if rate > 0 else 0.0
        print(
            f"{self._name}: {self._done:,}/{self._total:,} families, {self._failed} failed, "
            f"{(self._requests - self._requests_at_start) / elapsed:.1f} req/s, "
            f"elapsed {_clock(elapsed)}, remaining {_clock(left)}",
            file=self.stream, flush=True,
        )

    def note(self, text: str) -> None:
        """Print a message at once."""
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """Nothing to release."""


def _clock(seconds: float) -> str:
    """A time span as the bar shows it (``0:01:05``)."""
    return str(timedelta(seconds=round(seconds)))


class BarProgress:
    """A rich progress bar: done, failed, requests per second, time elapsed and remaining."""

    def __init__(self) -> None:
        # rich is imported only when a bar is drawn (a pipe or --quiet never loads it)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar

        self._requests_at_start = 0
        self._requests = 0
        self._bar = RichBar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[rps]:.1f} req/s"),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("remaining"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task: TaskID | None = None
        self._start = time.monotonic()
        self._bar.start()

    def phase(self, name: str, *, total: int, done: int = 0) -> None:
        """Show a new bar for the phase, *done* of *total* already filled."""
        if self._task is not None:
            self._bar.update(self._task, visible=False)
        self._start = time.monotonic()
        self._requests_at_start = self._requests
        self._task = self._bar.add_task(name, total=total, completed=done, failed=0, rps=0.0)

    def advance(self, *, failed: int, requests: int = 0) -> None:
        """Move the bar by one family."""
        if self._task is None:
            return
        self._requests = requests
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rps = (requests - self._requests_at_start) / elapsed
        self._bar.update(self._task, advance=1, failed=failed, rps=rps)

    def note(self, text: str) -> None:
        """Print above the bar."""
        self._bar.console.print(text)

    def close(self) -> None:
        """Stop drawing."""
        self._bar.stop()


def for_terminal(*, quiet: bool) -> Progress:
    """The right progress for stderr: silent, a bar on a terminal, else plain lines."""
    if quiet:
        return SilentProgress()
    if sys.stderr.isatty():
        return BarProgress()
    return LineProgress()
