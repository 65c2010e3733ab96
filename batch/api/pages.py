"""Paginated listings read to their end and never past it: the one guard of every listing.

A server that keeps answering full pages, or whose ``total`` keeps growing, would otherwise
be read until memory runs out. Every paginated listing (cases by status, storage directories)
checks each page here and stops with :class:`ListingError` at the first sign that it would not
end: a page equal to an earlier one, a ``total`` that changes while the listing is read, or an
offset past ``MAX_OFFSET`` entries (far more than any tenant lists; a rerun starts afresh).

The case listing's paging is inferred (``from`` and ``size``, answers
``{"hits": [...], "total": n}``): :func:`read_pages` reads it page by page, each page with the
server's ``Date`` (the listing follower's cursor is server time), and stops after
*max_pages* pages too.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from batch.errors import ListingError

#: Entries one listing may hold: generous, and still a bound on memory and requests.
MAX_OFFSET = 500_000
#: Pages read of one case listing at most (100,000 cases at 100 a page).
MAX_PAGES = 1000


class PageGuard:
    """The checks of one listing (``GET path``), page after page."""

    def __init__(self, path: str, *, method: str = "GET") -> None:
        self._method = method
        self._path = path
        self._seen: set[bytes] = set()
        self._total: int | None = None

    def check(self, offset: int, page: Sequence[Any], total: object = None) -> None:
        """Check the page read at *offset* (and the listing's *total*, when it gives one)."""
        if offset > MAX_OFFSET:
            self._stop(f"it goes on past {MAX_OFFSET:,} entries (offset {offset:,})")
        if isinstance(total, int) and not isinstance(total, bool):
            if self._total is not None and total != self._total:
                self._stop(f"its total changed from {self._total:,} to {total:,} while it was "
                           "read (rerun when the tenant is quieter)")
            self._total = total
        if not page:
            return
        try:
            raw = orjson.dumps(list(page), option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an integer past 64 bits: any faithful text will do
            raw = repr(list(page)).encode()
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        if digest in self._seen:
            self._stop(f"the page at offset {offset:,} repeats an earlier page")
        self._seen.add(digest)

    def _stop(self, why: str) -> None:
        raise ListingError(f"the server's listing of {self._path} does not end: {why}; "
                           "stopped reading it", method=self._method, path=self._path)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the case listing: its hits, the total it announced, the server's ``Date``."""

    hits: list[dict[str, Any]]
    total: int | None
    date: str | None


Fetch = Callable[[int], Awaitable[Page]]


async def read_pages(fetch: Fetch, *, page_size: int, max_pages: int = MAX_PAGES,
                     path: str = "/api/test") -> AsyncGenerator[Page, None]:
    """Every page *fetch* (given an offset) returns, checked by a :class:`PageGuard`."""
    guard = PageGuard(path)
    offset = 0
    for _ in range(max_pages):
        page = await fetch(offset)
        guard.check(offset, page.hits, page.total)
        yield page
        offset += len(page.hits)
        if len(page.hits) < page_size or (page.total is not None and offset >= page.total):
            return
    raise ListingError(f"the case listing has more than {max_pages} pages of {page_size} "
                       "cases; stopped there (narrow it, or read it again later)",
                       method="GET", path=path)
