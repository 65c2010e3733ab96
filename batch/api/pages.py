"""Paginated listings read to their end and never past it: the one guard of every listing.

A server that keeps answering full pages, or whose ``total`` keeps growing, would otherwise
be read until memory runs out. Every paginated listing (cases by status, storage directories)
checks each page here and stops with :class:`ListingError` at the first sign that it would not
end: a page equal to an earlier one, a ``total`` that changes while the listing is read, or an
offset past ``MAX_OFFSET`` entries (far more than any tenant lists; a rerun starts afresh).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from batch.errors import ListingError

#: Entries one listing may hold: generous, and still a bound on memory and requests.
MAX_OFFSET = 500_000


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
