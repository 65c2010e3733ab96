"""Following a tenant through the case listing: ``GET /api/test?from_status_change_date=…``,
the route Illumina's examples show for finding the cases whose status changed.

The listing is read from a cursor kept in the ledger: the server time up to which it has been
read. It is always server time, never this machine's clock: the newest status-change date of
the cases listed, or the server's ``Date`` header (listings whose hits carry no date). The
first cursor is the newest change the ledger has seen (from webhooks: "since the last change
seen"), else the server's ``Date`` now.

Each read starts ``overlap`` seconds before the cursor, since a change may show in the
listing a little after its own date; the repeats cost nothing, because a listed
case is recorded as an event with the same dedupe key as its webhook would have (case, status,
change date) and so is acted on once, through the same work list as webhooks. The cursor moves
only after every page was read and every event recorded, so a failed read is read again.

The listing is read every ``interval`` seconds (``listen --poll``), and at once when the
listener kept a webhook body it could not read (a catch-up). A read that fails is logged and
counted, and tried again after a backoff; it never stops the listener, except a refusal of
the listener's own credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import anyio

from batch.api import Client
from batch.api.auth import LOGIN_PATH
from batch.api.client import MAX_PAGES
from batch.errors import ApiError, AuthError, LedgerError, ListingError
from batch.ledger import Ledger
from batch.pull.hooks import HookEvent

__all__ = ["FollowOptions", "FollowStats", "Follower", "server_time"]

log = logging.getLogger("batch.pull.listen")


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowOptions:
    """How the listing is followed: *interval* seconds between reads (None: only to catch
    up), the page size and bound, the overlap, and the backoff after a failed read."""

    interval: float | None = None
    page_size: int = 100
    max_pages: int = MAX_PAGES
    overlap: float = 60.0
    first_backoff: float = 5.0
    max_backoff: float = 600.0


@dataclass(slots=True)
class FollowStats:
    """What following the listing did."""

    reads: int = 0
    listed: int = 0
    recorded: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)


class Busy(Exception):
    """The work list cannot take a listed case now: the read stops, the cursor stays."""


#: Records a listed case as an event; its ledger row id, or None for a known one. Raises
#: Busy when the work list is full.
Record = Callable[[HookEvent], int | None]


def server_time(value: Any) -> datetime | None:
    """A server date (RFC 1123 as the API and HTTP write them, or ISO 8601) as UTC; None
    when it is neither."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).replace(microsecond=0).isoformat()


class Follower:
    """Reads the listing on a clock and on demand, recording what it lists."""

    def __init__(self, ledger: Ledger, client: Client, record: Record, *,
                 options: FollowOptions, stats: FollowStats) -> None:
        self.ledger, self.client, self.record = ledger, client, record
        self.options, self.stats = options, stats
        self._wake = anyio.Event()

    def catch_up(self) -> None:
        """Read the listing as soon as possible (a webhook body could not be read)."""
        self._wake.set()

    async def run(self) -> None:
        """Read at start when following, then on the clock and on demand, until cancelled.
        Raises AuthError when the listener's own credentials are refused."""
        due = self.options.interval is not None
        failures = 0
        while True:
            if not due:
                await self._wait(None if failures == 0 else self._backoff(failures))
            due = False
            self._wake = anyio.Event()  # a catch-up asked from here on reads again
            failures = 0 if await self._read_once() else failures + 1

    async def _wait(self, backoff: float | None) -> None:
        """Until the next read is due: the interval, the backoff, or a catch-up."""
        waits = [w for w in (self.options.interval, backoff) if w is not None]
        with anyio.move_on_after(min(waits) if waits else None):
            await self._wake.wait()

    def _backoff(self, failures: int) -> float:
        first, cap = self.options.first_backoff, self.options.max_backoff
        return float(min(cap, first * 4 ** (failures - 1)))

    async def _read_once(self) -> bool:
        """One read; False when it failed (logged and counted)."""
        try:
            await self.read()
        except AuthError as err:
            if err.path is None or err.path == LOGIN_PATH:  # the listener's own login
                raise
            return self._failed(err)
        except (ApiError, LedgerError, Busy) as err:
            return self._failed(err)
        return True

    def _failed(self, err: Exception) -> bool:
        message = err.message if isinstance(err, ApiError) else str(err)
        repeated = bool(self.stats.errors) and self.stats.errors[-1] == message
        self.stats.failures += 1
        self.stats.errors = [*self.stats.errors[-9:], message]
        # a listing that keeps failing the same way must not fill the log on a short --poll
        log.log(logging.DEBUG if repeated else logging.WARNING,
                "reading the case listing failed: %s; tried again later", message)
        return False

    async def read(self) -> None:
        """Read the listing from the cursor (or set the first cursor) and record each case."""
        cursor = server_time(self.ledger.listing_cursor()) or await self._first_cursor()
        since = _iso(cursor - timedelta(seconds=self.options.overlap))
        newest: datetime | None = None
        first_date: str | None = None
        listed = 0
        pages = self.client.list_pages(since=since, page_size=self.options.page_size,
                                       max_pages=self.options.max_pages)
        async with aclosing(pages):
            async for page in pages:
                first_date, listed = first_date or page.date, listed + len(page.hits)
                for hit in page.hits:
                    newest = _later(newest, self._record_hit(hit))
        self.stats.reads += 1
        if newest is None and listed and first_date is not None:
            newest = server_time(first_date)  # hits without dates: the server's clock
        if newest is not None and newest > cursor:
            self.ledger.set_listing_cursor(_iso(newest))

    async def _first_cursor(self) -> datetime:
        """No cursor yet: the newest change the ledger has seen (from webhooks), else the
        server's time now."""
        seen = [d for d in map(server_time, self.ledger.recent_change_dates()) if d is not None]
        when = max(seen) if seen else await self._server_now()
        self.ledger.set_listing_cursor(_iso(when))
        log.info("following the case listing from %s (server time)", _iso(when))
        return when

    async def _server_now(self) -> datetime:
        """The server's time, from the ``Date`` header of a one-case listing."""
        pages = self.client.list_pages(page_size=1, max_pages=1)
        async with aclosing(pages):
            page = await anext(pages)
        when = server_time(page.date)
        if when is None:
            raise ListingError("the server's answer has no Date header to start the listing "
                               "cursor from")
        return when

    def _record_hit(self, hit: dict[str, Any]) -> datetime | None:
        """Record one listed case; its status-change date."""
        name, date = hit.get("name"), hit.get("status_change_date")
        if not isinstance(name, str) or not name:
            return None
        self.stats.listed += 1
        status = hit.get("status")
        event = HookEvent(name, status if isinstance(status, str) else None, None,
                          date if isinstance(date, str) else None)
        if self.record(event) is not None:
            self.stats.recorded += 1
        return server_time(date)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)
