"""What one running sandbox app holds: its state, fault settings, counters and side channels."""

from __future__ import annotations

import random

from aiohttp import web

from batch.sandbox.config import SandboxConfig
from batch.sandbox.faults import Faults
from batch.sandbox.observe import Recorder, Stats
from batch.sandbox.state import Case, SandboxState, User
from batch.sandbox.webhook import Notifier


class Runtime:
    """Per-app companions of a :class:`SandboxState` (the state may outlive the app)."""

    def __init__(self, config: SandboxConfig, state: SandboxState) -> None:
        self.config = config
        self.state = state
        self.rng = random.Random(config.seed)
        self.faults = Faults.from_config(config)
        self.stats = Stats()
        self.recorder = Recorder(config.record) if config.record is not None else None
        self.notifier = Notifier(config.webhook) if config.webhook else None

    def tick(self) -> None:
        """Apply due lifecycle steps and announce them."""
        changes = self.state.advance_due(self.config.advance_after)
        if changes and self.notifier is not None:
            self.notifier.send(changes)

    def case(self, name: str) -> Case | None:
        """A case by name, with its lifecycle brought up to date."""
        self.tick()
        return self.state.cases.get(name)


RUNTIME = web.AppKey("sandbox_runtime", Runtime)
#: The authenticated user of an ``/api`` request.
USER = web.RequestKey("sandbox_user", User)
#: Set on a request whose connection must be closed instead of answered.
DROP = web.RequestKey("sandbox_drop", bool)


def runtime(request: web.Request) -> Runtime:
    """The runtime of the app serving *request*."""
    return request.app[RUNTIME]
