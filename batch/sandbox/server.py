"""Running a sandbox: as an async context manager, or in a background thread for sync code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

from batch.sandbox.app import create_app
from batch.sandbox.config import DEFAULT_CONFIG, SandboxConfig
from batch.sandbox.runtime import RUNTIME
from batch.sandbox.state import SandboxState
from batch.serving import Limits, serve

START_TIMEOUT = 30.0
#: Bounds of the sandbox's server: many client connections (benchmarks run 512), slow
#: headers and bodies cut off, bodies as large as the application accepts (64 MiB).
SANDBOX_LIMITS = Limits(max_connections=2048, header_timeout=10.0, idle_timeout=60.0,
                        body_timeout=60.0, max_body=64 * 1024 * 1024)


@dataclass(frozen=True, slots=True)
class RunningSandbox:
    """A sandbox that is serving: its base URL (no trailing slash), state and configuration."""

    url: str
    state: SandboxState
    config: SandboxConfig


@asynccontextmanager
async def run_sandbox(
    config: SandboxConfig = DEFAULT_CONFIG,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state: SandboxState | None = None,
) -> AsyncIterator[RunningSandbox]:
    """Serve a sandbox on *host*:*port* (0: a free port) for the duration of the block."""
    app = create_app(config, state=state)
    async with serve(app, host=host, port=port, limits=SANDBOX_LIMITS) as served:
        yield RunningSandbox(url=served.url, state=app[RUNTIME].state, config=config)


class SandboxThread:
    """A sandbox served from a background thread with its own event loop (for sync code)."""

    def __init__(
        self,
        config: SandboxConfig = DEFAULT_CONFIG,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state: SandboxState | None = None,
    ) -> None:
        self.config = config
        self._host, self._port, self._initial_state = host, port, state
        self._running: RunningSandbox | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return self._require().url

    @property
    def state(self) -> SandboxState:
        """The sandbox's in-memory data."""
        return self._require().state

    def _require(self) -> RunningSandbox:
        if self._running is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self._running

    def start(self) -> SandboxThread:
        """Start serving; return once the port is bound (raise if it could not start)."""
        if self._thread is not None:
            raise RuntimeError("the sandbox thread was already started")
        self._thread = threading.Thread(target=self._main, name="emg-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError("the sandbox did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the sandbox could not start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(START_TIMEOUT)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); a thread has nowhere else to raise
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with run_sandbox(self.config, host=self._host, port=self._port,
                               state=self._initial_state) as running:
            self._running = running
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> SandboxThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
