"""The pull commands and the listener as whole jobs: a client, the work, and (for ``listen``)
the ledger and the signals that stop it."""

from __future__ import annotations

import signal
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import anyio

from batch.jobs.connect import (
    Connection,
    Target,
    check_ledger,
    ledger_file,
    open_bound,
    open_client,
)
from batch.ledger import Ledger
from batch.outputs import check_writable, make_dir
from batch.outputs.keep import refuse_inputs
from batch.pull import (
    FinalizedOptions,
    ListenerStats,
    PullResult,
    TableResult,
    listen,
    pull_finalized,
)

Puller = Callable[..., Coroutine[Any, Any, TableResult]]


async def finalized_job(target: Target, connection: Connection,
                        options: FinalizedOptions) -> PullResult:
    """``emg-batch pull finalized``."""
    async with open_client(target, connection) as client:
        return await pull_finalized(client, options)


def cases_ledger(manifest: Path | None, ledger: Path | None,
                 target: Target | None) -> Path | None:
    """The ledger whose cases a pull reads: ``--ledger``, else the manifest's for *target*
    (as ``run`` names it), if any."""
    return ledger or (ledger_file(manifest, None, target) if manifest is not None else None)


async def table_job(puller: Puller, target: Target, connection: Connection,
                    names: Sequence[str], out: Path, *, ledger: Path | None = None,
                    manifest: Path | None = None) -> TableResult:
    """``emg-batch pull candidates`` / ``pull info``: *puller* over *names*, written to *out*.

    *ledger*, where the names came from, must belong to *target*'s server (``LedgerError``).
    *out* is never the *manifest* the names came from, nor a file of the ledger
    (``UsageError``, before anything is sent).
    """
    refuse_inputs(out, manifests=[manifest] if manifest is not None else [], ledger=ledger)
    check_ledger(ledger, target)
    async with open_client(target, connection) as client:
        return await puller(client, list(names), concurrency=connection.concurrency, out=out)


async def listen_job(target: Target, connection: Connection, ledger_path: Path, *,
                     retry_failed: bool = False, stats: ListenerStats | None = None,
                     **options: Any) -> ListenerStats:
    """``emg-batch listen``: follow status changes (webhooks, the listing) until SIGINT or
    SIGTERM; the counters after.

    *retry_failed* gives the events left failed by earlier runs a fresh set of attempts.
    The ledger's folder and the report folder are tried first (``OutputError``), and the
    ledger must belong to *target*'s server (``LedgerError``), before anything is sent.
    """
    stats = stats or ListenerStats()
    check_writable(ledger_path, in_place=True)  # exit 3 before listening, as run does
    out = options.get("on_finalized_out")
    if out is not None:
        make_dir(out)
    with open_bound(ledger_path, target) as ledger:
        if retry_failed:
            stats.retried = ledger.retry_failed_events()
        stats.at_start = ledger.event_counts()
        async with open_client(target, connection) as client, \
                anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, tg.cancel_scope)
            await listen(ledger=ledger, client=client, stats=stats, **options)
    return stats


def events_view(ledger_path: Path, *, limit: int = 20) -> tuple[dict[str, int],
                                                                list[dict[str, Any]]]:
    """``emg-batch listen --show-events``: the events by state (and ``unread``, the webhook
    bodies that named no case), and the newest failed ones."""
    with Ledger.open(ledger_path, create=False) as ledger:
        return ({**ledger.event_counts(), "unread": ledger.unread_count()},
                ledger.failed_events(limit))


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return
