"""What every job opens: where requests go (a tenant or an in-process sandbox), the client for
it, the ledger for a manifest (bound to that server), and where outputs go."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from batch.api import normalise_host
from batch.errors import UsageError
from batch.jobs.tenants import Setting, Tenant
from batch.ledger import SANDBOX_HOST, Ledger, default_path
from batch.run.summary import DEFAULT_CONCURRENCY

if TYPE_CHECKING:
    from batch.api import Client, Credentials, RetryPolicy

#: What a command that needs a server says when none is given.
NO_HOST = "no host: pass --host URL (or set EMG_HOST), or --sandbox to try locally"


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where requests go: a tenant host with credentials, or an in-process sandbox; the
    config file's tenant it came from, and where each setting came from (never a secret)."""

    host: str | None = None
    credentials: Credentials | None = None
    sandbox: bool = False
    sandbox_fixture: Path | None = None
    tenant: Tenant | None = None
    settings: tuple[Setting, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """How the client talks: rate (requests/s, None = adaptive), pool size, timeout (s)."""

    rate: float | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = 60.0
    retry: RetryPolicy | None = None


def output_path(manifest: Path, suffix: str, out_dir: Path | None) -> Path:
    """``<stem><suffix>`` next to the manifest, or in *out_dir*."""
    return (out_dir or manifest.parent) / f"{manifest.stem}{suffix}"


@asynccontextmanager
async def open_client(target: Target, connection: Connection) -> AsyncIterator[Client]:
    """A logged-in-on-demand client for *target*; starts the sandbox when asked."""
    from batch.api import Credentials  # the transport (aiohttp) only for a command that uses it

    if target.sandbox:
        from batch.sandbox import (
            DEFAULT_PASSWORD,
            DEFAULT_USER,
            SandboxConfig,
            demo_fixture_path,
            run_sandbox,
        )

        fixture = target.sandbox_fixture or demo_fixture_path()
        async with run_sandbox(SandboxConfig(fixture=fixture, advance_after=0.0)) as sandbox:
            credentials = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
            async with _client(sandbox.url, credentials, connection) as client:
                yield client
        return
    credentials = target.credentials or Credentials.from_env(os.environ)
    async with _client(tenant_host(target), credentials, connection) as client:
        yield client


@asynccontextmanager
async def _client(host: str, credentials: Credentials, c: Connection) -> AsyncIterator[Client]:
    from batch.api import Client  # aiohttp is loaded only by a command that makes requests

    async with Client(host, credentials=credentials, rate=c.rate, concurrency=c.concurrency,
                      retry=c.retry, timeout=c.timeout) as client:
        yield client


def tenant_host(target: Target) -> str:
    """The host *target* names, as given; ``UsageError`` when it names none."""
    if not target.host:
        raise UsageError(NO_HOST)
    return target.host


def ledger_host(target: Target) -> str:
    """The server a ledger used with *target* belongs to: its base URL, or ``sandbox``."""
    return SANDBOX_HOST if target.sandbox else normalise_host(tenant_host(target))


def account_of(target: Target) -> str:
    """Who works with *target*, as a ledger records it: the username, or ``token``."""
    if target.sandbox:
        from batch.sandbox import DEFAULT_USER  # the sandbox is imported only when it is used

        return DEFAULT_USER
    from batch.api import Credentials

    credentials = target.credentials or Credentials.from_env(os.environ)
    return credentials.username or "token"


def ledger_file(manifest: Path, ledger: Path | None, target: Target | None = None) -> Path:
    """``--ledger``, else the manifest's: ``<stem>.ledger.sqlite``, or with ``--sandbox``
    ``<stem>.sandbox.ledger.sqlite``."""
    return ledger or default_path(manifest, sandbox=target is not None and target.sandbox)


def open_ledger(manifest: Path, ledger: Path | None, target: Target | None = None) -> Ledger:
    """The ledger for *manifest*, locked for this process and bound to *target*'s server
    (``LedgerError`` when it holds work for another; nothing is sent before this)."""
    return open_bound(ledger_file(manifest, ledger, target), target)


def open_bound(path: Path, target: Target | None) -> Ledger:
    """The ledger at *path* (created when missing), locked, bound to *target*'s server."""
    opened = Ledger.open(path)
    try:
        opened.lock()
        if target is not None:
            opened.bind(ledger_host(target), account_of(target))
    except BaseException:
        opened.close()
        raise
    return opened


def check_ledger(path: Path | None, target: Target | None) -> None:
    """Refuse (``LedgerError``) to use the cases of the ledger at *path* with *target* when
    it belongs to another server; nothing is written to it. No ledger there: nothing to check."""
    if path is None or target is None or not path.exists():
        return
    with Ledger.open(path, create=False) as opened:
        opened.check_host(ledger_host(target))
