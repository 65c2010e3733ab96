"""The case listing (``GET /api/test``) read page by page, within bounds.

Its paging is inferred (``from`` and ``size``, answers ``{"hits": [...], "total": n}``), so a
server that pages otherwise must not make a reader loop forever or skip cases unnoticed: a page
that repeats the one before it, a ``total`` that changes while the pages are read, and more
than *max_pages* pages each stop the listing with a ``ListingError`` that says what was seen.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from batch.errors import ListingError

__all__ = ["MAX_PAGES", "Page", "read_pages"]

#: Pages read of one listing at most (100,000 cases at 100 a page).
MAX_PAGES = 1000


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the listing: its hits, the total it announced, the server's ``Date``."""

    hits: list[dict[str, Any]]
    total: int | None
    date: str | None


Fetch = Callable[[int], Awaitable[Page]]


async def read_pages(fetch: Fetch, *, page_size: int,
                     max_pages: int = MAX_PAGES) -> AsyncGenerator[Page, None]:
    """Every page *fetch* (given an offset) returns, checked as they come."""
    offset, first_total, previous = 0, None, None
    for number in range(1, max_pages + 1):
        page = await fetch(offset)
        names = [hit.get("name") for hit in page.hits]
        if names and names == previous:
            raise ListingError(f"the case listing repeated page {number - 1} at from={offset}: "
                               "the server does not seem to page with from and size")
        first_total = page.total if first_total is None else first_total
        if page.total is not None and page.total != first_total:
            raise ListingError(f"the case listing's total changed from {first_total} to "
                               f"{page.total} while its pages were read; read it again")
        yield page
        offset, previous = offset + len(page.hits), names
        if len(page.hits) < page_size or (page.total is not None and offset >= page.total):
            return
    raise ListingError(f"the case listing has more than {max_pages} pages of {page_size} "
                       "cases; stopped there (narrow it, or read it again later)")
