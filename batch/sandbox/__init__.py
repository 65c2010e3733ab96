"""An in-memory emulator of the Emedgene API, for tests, benchmarks and first runs.

``create_app`` builds the aiohttp application; ``run_sandbox`` serves it inside async code;
``SandboxThread`` serves it from a background thread; ``emg-batch sandbox`` (``batch.cli.sandbox``)
serves it from the command line.
"""

from typing import TYPE_CHECKING

from batch.lazy import loader

if TYPE_CHECKING:
    from batch.sandbox.app import RunningSandbox, SandboxThread, create_app, run_sandbox
    from batch.sandbox.config import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig
    from batch.sandbox.fixture import demo_fixture_path
    from batch.sandbox.state import SandboxState

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxState",
    "SandboxThread",
    "create_app",
    "demo_fixture_path",
    "run_sandbox",
]

#: Where each public name lives: imported on first use, so that a command loads only the
#: modules it needs.
_HOMES = {
    "create_app": "batch.sandbox.app",
    "DEFAULT_PASSWORD": "batch.sandbox.config",
    "DEFAULT_USER": "batch.sandbox.config",
    "SandboxConfig": "batch.sandbox.config",
    "demo_fixture_path": "batch.sandbox.fixture",
    "RunningSandbox": "batch.sandbox.app",
    "SandboxThread": "batch.sandbox.app",
    "run_sandbox": "batch.sandbox.app",
    "SandboxState": "batch.sandbox.state",
}


__getattr__ = loader(__name__, _HOMES, globals())
