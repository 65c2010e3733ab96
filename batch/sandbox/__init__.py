"""An in-memory emulator of the Emedgene API, for tests, benchmarks and first runs.

``create_app`` builds the aiohttp application; ``run_sandbox`` serves it inside async code;
``SandboxThread`` serves it from a background thread; ``emg-batch sandbox`` (``batch.cli.sandbox``)
serves it from the command line.
"""

from batch.sandbox.app import create_app
from batch.sandbox.config import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig
from batch.sandbox.fixture import demo_fixture_path
from batch.sandbox.server import RunningSandbox, SandboxThread, run_sandbox
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
