"""The webhook receiver: case-status-change events in, durable records and report pulls out.

Each event is written to the ledger *before* it is answered (so an acknowledged event is never
lost), answered ``200`` at once (duplicates too, so the sender stops retrying), and then handled
by a bounded set of workers. An event is only a hint: events may be duplicated or arrive out of
order, so a worker re-reads the case (``GET /api/test/{case}/``) and acts on what the server says
now. Several events for one case waiting at the same time are handled by one re-read. Events
recorded but not handled when the listener stopped are handled when it starts again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from aiohttp import web

from batch.api import Client, is_loopback
from batch.errors import ApiError, AuthError, PermanentError, UsageError
from batch.ledger import Ledger
from batch.pull.reports import FINALIZED, pull_case_reports

__all__ = ["ListenerStats", "dedupe_key", "listen"]

log = logging.getLogger(__name__)

WORKERS = 4
PATHS = ("/", "/webhook")
MAX_BODY = 1 << 20


def dedupe_key(event: Mapping[str, Any]) -> str:
    """The identity of an event: case, new status and the time of the change."""
    return "|".join(str(event.get(k) or "") for k in ("case_name", "status",
                                                      "status_change_date"))


@dataclass(slots=True)
class ListenerStats:
    """Counters of one listener (for logs and tests)."""

    received: int = 0
    duplicates: int = 0
    rejected: int = 0
    handled: int = 0
    finalized: int = 0
    reports_downloaded: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)


class _Inbox:
    """Cases waiting to be re-read, each with the keys of its unhandled events."""

    def __init__(self) -> None:
        self.pending: dict[str, list[str]] = {}
        self.busy: set[str] = set()
        self._wake = anyio.Event()

    def put(self, case: str, key: str) -> None:
        self.pending.setdefault(case, []).append(key)
        self._wake.set()

    async def take(self) -> tuple[str, list[str]]:
        """The next case no other worker is handling (events for one case are serial)."""
        while True:
            for case in self.pending:
                if case not in self.busy:
                    self.busy.add(case)
                    return case, self.pending.pop(case)
            self._wake = anyio.Event()
            await self._wake.wait()

    def done(self, case: str) -> None:
        self.busy.discard(case)
        self._wake.set()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Setup:
    ledger: Ledger
    client: Client
    out: Path | None
    report_types: tuple[str, ...]
    stats: ListenerStats
    inbox: _Inbox


async def listen(
    *,
    ledger: Ledger,
    client: Client,
    host: str = "127.0.0.1",
    port: int = 0,
    on_finalized_out: Path | None = None,
    report_types: Sequence[str] = ("pdf",),
    ready: Callable[[str], None] | None = None,
    allow_remote: bool = False,
    workers: int = WORKERS,
    stats: ListenerStats | None = None,
) -> None:
    """Receive webhooks on *host*:*port* until cancelled.

    ``ready(url)`` is called once the port is bound. With *on_finalized_out*, the reports of
    every case found finalized are downloaded there (as ``pull finalized`` does).
    """
    if not allow_remote and not is_loopback(host):
        raise UsageError(f"{host} is not a loopback address; pass --allow-remote to listen on it")
    setup = _Setup(ledger=ledger, client=client, out=on_finalized_out,
                   report_types=tuple(report_types), stats=stats or ListenerStats(),
                   inbox=_Inbox())
    for event in ledger.events():  # recorded before a stop, never handled: handle them now
        if event["handled_at"] is None:
            setup.inbox.put(str(event["case_name"]), str(event["dedupe_key"]))
    runner = web.AppRunner(_app(setup), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        url = f"http://{f'[{host}]' if ':' in host else host}:{bound}"
        log.info("listening for webhooks at %s", url)
        async with anyio.create_task_group() as tg:
            for _ in range(max(1, workers)):
                tg.start_soon(_worker, setup)
            if ready is not None:
                ready(url)
            await anyio.sleep_forever()
    finally:
        await runner.cleanup()


def _app(setup: _Setup) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def receive(request: web.Request) -> web.Response:
        return await _receive(request, setup)

    for path in PATHS:
        app.router.add_post(path, receive)
    return app


async def _receive(request: web.Request, setup: _Setup) -> web.Response:
    try:
        event = json.loads(await request.text())
    except ValueError:
        event = None
    case = event.get("case_name") if isinstance(event, dict) else None
    if not isinstance(event, dict) or not isinstance(case, str) or not case.strip():
        setup.stats.rejected += 1
        return web.json_response({"message": "expected a JSON event with case_name"}, status=400)
    key = dedupe_key(event)
    # Durable first: once answered 200, the sender forgets the event.
    fresh = setup.ledger.add_event(key, case, event)
    setup.stats.received += 1
    if fresh:
        setup.inbox.put(case, key)
    else:
        setup.stats.duplicates += 1
    return web.json_response({"recorded": fresh, "duplicate": not fresh})


async def _worker(setup: _Setup) -> None:
    while True:
        case, keys = await setup.inbox.take()
        try:
            handled = await _handle(setup, case)
        finally:
            setup.inbox.done(case)
        if handled:
            for key in keys:
                setup.ledger.mark_event_handled(key)
            setup.stats.handled += len(keys)


async def _handle(setup: _Setup, case: str) -> bool:
    """Re-read *case* and act on its true status; False leaves its events for a restart."""
    stats = setup.stats
    try:
        data = await setup.client.get_case(case)
        if data.get("status") != FINALIZED:
            return True
        stats.finalized += 1
        if setup.out is None:
            return True
        result = await pull_case_reports(setup.client, case, out=setup.out,
                                         report_types=setup.report_types, case_object=data)
    except AuthError:
        raise
    except PermanentError as err:
        return _failed(stats, case, err.message, handled=True)
    except ApiError as err:
        return _failed(stats, case, err.message, handled=False)
    stats.reports_downloaded += result.downloaded
    if result.error is not None:
        return _failed(stats, case, result.error, handled=not result.transient)
    log.info("%s finalized: %d report(s) downloaded, %d already present", case,
             result.downloaded, result.present)
    return True


def _failed(stats: ListenerStats, case: str, message: str, *, handled: bool) -> bool:
    stats.failures += 1
    stats.errors.append(f"{case}: {message}")
    log.warning("%s: %s", case, message)
    return handled
