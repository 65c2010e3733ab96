"""The Emedgene API, endpoint by endpoint: the one place that knows paths and answer shapes, the
paginated listings read to their end, and the one cache of the look-ups a run repeats.

Paginated listings read to their end and never past it: the one guard of every listing.

A server that keeps answering full pages, or whose ``total`` keeps growing, would otherwise
be read until memory runs out. Every paginated listing (cases by status, storage directories)
checks each page here and stops with :class:`ListingError` at the first sign that it would not
end: a page equal to an earlier one, a ``total`` that changes while the listing is read, or an
offset past ``MAX_OFFSET`` entries (far more than any tenant lists; a rerun starts afresh).

The case listing's paging is inferred (``from`` and ``size``, answers
``{"hits": [...], "total": n}``): :func:`read_pages` reads it page by page, each page with the
server's ``Date`` (the listing follower's cursor is server time), and stops after
*max_pages* pages too.

The Emedgene API, endpoint by endpoint: the one place that knows paths and answer shapes.

A ``Client`` is a thin layer over its ``Pipeline`` (the request pipeline: rate limit, retries,
re-login, error translation, deadlines, body limits, redirects). It knows nothing of
manifests, payload rules or the ledger. Names in a path are checked by ``http.segment``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, Generic, TypeVar, Unpack

import aiohttp
import orjson

from batch.api.auth import Credentials
from batch.api.http import segment, stream_to
from batch.api.limiter import Limiter
from batch.api.pipeline import ClientStats, Pipeline, PipelineOptions, ServerClock, read_json
from batch.errors import AmbiguousCreate, ListingError, NotFound, PermanentError

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


log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

CREATE_PATH = "/api/cases/v2/cases"
#: Where a tenant may serve its OpenAPI document (inferred: the Swagger UI is at
#: /api/apidoc/swagger and its operation ids follow spectree, whose spec is openapi.json).
OPENAPI_PATHS = ("/api/apidoc/openapi.json", "/api/apidoc/swagger.json")
_FS_PAGE = 100


@dataclass(frozen=True, slots=True)
class CreateResult:
    """A case the server created: its name (``EMG…``) and the HTTP status (201)."""

    name: str
    status: int


class LookupCache(Generic[K, V]):
    """The one cache of look-ups a run repeats (storage details, directory listings, samples).

    One fetch per key at a time (single flight), the answer kept for the run. A failure of type
    *keep* (default ``PermanentError``: an unknown storage id costs one request, not one per
    family) is kept and raised again; *keep* ``()`` keeps none. With *limit*, the cache starts
    again once it holds that many keys, so a long run's memory stays bounded.
    """

    def __init__(
        self, *, keep: type[Exception] | tuple[type[Exception], ...] = PermanentError,
        limit: int | None = None,
    ) -> None:
        self._keep = keep
        self._limit = limit
        self._done: dict[K, V | Exception] = {}
        self._locks: dict[K, asyncio.Lock] = {}

    async def get(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        """The value for *key*, fetched once (a kept failure is raised again)."""
        if key in self._done:  # answered before: no lock to take
            return self._hit(key)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            if key in self._done:
                return self._hit(key)
            try:
                value = await fetch()
            except self._keep as err:
                self._store(key, _fresh(err))
                raise
            self._store(key, value)
            return value

    def _store(self, key: K, found: V | Exception) -> None:
        if self._limit is not None and len(self._done) >= self._limit:
            self._done.clear()
        self._done[key] = found

    def _hit(self, key: K) -> V:
        hit = self._done[key]
        if isinstance(hit, Exception):
            raise _fresh(hit)
        return hit


def _fresh(err: Exception) -> Exception:
    """A copy of a kept failure, without a traceback: raising the kept one at every ask would
    chain each ask's frames onto it, held in a cycle with this cache that only the collector
    frees (slow with a big manifest in memory)."""
    try:
        return copy.copy(err).with_traceback(None)
    except TypeError:  # an error that cannot be rebuilt from its arguments: the same one
        return err.with_traceback(None)


def _segment(value: str | int) -> str:
    return segment(value)  # PermanentError for '..', '/', control characters: nothing sent


def _normalise_dir(path: str) -> str:
    return "/".join(part for part in path.split("/") if part)


def hits(data: Any) -> list[dict[str, Any]]:
    """The objects of a search answer: ``{"hits": [...]}`` or a bare list."""
    if isinstance(data, list):
        return [h for h in data if isinstance(h, dict)]
    if isinstance(data, dict):
        found = data.get("hits", [])
        return [h for h in found if isinstance(h, dict)] if isinstance(found, list) else []
    return []


async def _dated(resp: aiohttp.ClientResponse) -> tuple[Any, str | None]:
    """A JSON answer and the server's ``Date`` header (server time, for cursors)."""
    return await read_json(resp), resp.headers.get("Date")


def _as_dict(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {"value": data}


class Client:
    """An async Emedgene API client for one run; use as ``async with Client(...) as c``.

    Its keyword options (rate, concurrency, retry, timeout, user agent, body limits) are the
    pipeline's: see ``PipelineOptions``.
    """

    def __init__(
        self, host: str, *, credentials: Credentials, **options: Unpack[PipelineOptions]
    ) -> None:
        #: The request pipeline this client sends through (one session, one limiter).
        self.pipeline = Pipeline(host, credentials=credentials, **options)
        self._call = self.pipeline.call
        self.host = self.pipeline.host
        self.stats: ClientStats = self.pipeline.stats
        #: The server's clock, from the ``Date`` of its answers (see ``ServerClock``).
        self.clock: ServerClock = self.pipeline.clock
        #: The shared rate limiter (read its ``rate`` for progress displays).
        self.limiter: Limiter = self.pipeline.limiter
        self._users: list[dict[str, Any]] | None = None
        self._users_lock = asyncio.Lock()
        self._storages: LookupCache[int, dict[str, Any]] = LookupCache()
        # listings are kept up to 4096 directories (then the cache starts again), as a run's
        # resolver kept them: a huge BaseSpace tree cannot fill memory
        self._dirs: LookupCache[tuple[int, str], list[dict[str, str]]] = LookupCache(limit=4096)
        self._samples: LookupCache[str, dict[str, Any] | None] = LookupCache(keep=())

    def __repr__(self) -> str:
        return f"Client(host={self.host!r}, limiter={self.limiter!r})"

    @property
    def token_expires_at(self) -> float | None:
        """When the current token expires (epoch seconds), None when unknown (an opaque
        token); with a password the client logs in again before that."""
        return self.pipeline.auth.expires_at

    @property
    def can_relogin(self) -> bool:
        """Whether the client can log in again (it has a username and password)."""
        return self.pipeline.auth.can_login

    async def __aenter__(self) -> Client:
        await self.pipeline.open()
        warning = self.pipeline.auth.expiry_warning()
        if warning:
            log.warning(warning)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.pipeline.close()

    async def login(self) -> None:
        """Log in now with the username and password; with only a token, nothing to do."""
        auth = self.pipeline.auth
        if auth.can_login:
            await auth.refresh(auth.generation, force=True)

    async def pause_all(self, seconds: float) -> None:
        """Hold every request of this client for *seconds* from now (returns at once)."""
        self.pipeline.pause_all(seconds)

    # ------------------------------------------------------------------ cases

    async def create_case(
        self, payload: Mapping[str, Any], *, dry_run: bool = False
    ) -> CreateResult | None:
        """Create a case (``dry_run=False``) or have the server validate it (None)."""
        params = [("dry_run", "true" if dry_run else "false")]

        async def read(resp: aiohttp.ClientResponse) -> tuple[int, Any]:
            try:
                return resp.status, await read_json(resp)
            except PermanentError:
                if dry_run:
                    raise
                raise AmbiguousCreate(
                    f"created (HTTP {resp.status}) but the answer could not be read",
                    status=resp.status, method="POST", path=CREATE_PATH,
                ) from None

        status, data = await self._call(
            "POST", CREATE_PATH, params=params, body=dict(payload), unsafe=not dry_run, reader=read
        )
        if dry_run:
            return None
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name:
            self.stats.ambiguous += 1
            raise AmbiguousCreate(
                f"HTTP {status} without a case name", status=status, method="POST", path=CREATE_PATH
            )
        return CreateResult(name=name, status=status)

    async def get_case(self, case: str) -> dict[str, Any]:
        """The full case object (``GET /api/test/{case}/``)."""
        return _as_dict(await self._call("GET", f"/api/test/{_segment(case)}/"))

    async def case_info(self, case: str) -> dict[str, Any]:
        """Creation time, creator, last update, name and status of a case."""
        return _as_dict(await self._call("GET", f"/api/test/{_segment(case)}/info"))

    async def set_status(self, case: str, status: str) -> None:
        """Change a case's status (e.g. ``custom_status_1``, ``finalized``)."""
        await self._call("PUT", f"/api/test/{_segment(case)}", body={"status": status})

    async def list_cases(
        self, *, status: Sequence[str] = (), since: str | None = None, page_size: int = 100,
        max_pages: int = MAX_PAGES,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every case with one of *status* whose status changed since *since*, all pages
        (``ListingError`` when the pages are inconsistent, see ``batch.api.client``)."""
        async for page in self.list_pages(status=status, since=since, page_size=page_size,
                                          max_pages=max_pages):
            for hit in page.hits:
                yield hit

    def list_pages(
        self, *, status: Sequence[str] = (), since: str | None = None, page_size: int = 100,
        max_pages: int = MAX_PAGES,
    ) -> AsyncGenerator[Page, None]:
        """The pages of ``GET /api/test`` (each with the server's ``Date``), checked."""

        async def fetch(offset: int) -> Page:
            params = [("status", s) for s in status]
            if since:
                params.append(("from_status_change_date", since))
            params += [("from", str(offset)), ("size", str(page_size))]
            data, date = await self._call("GET", "/api/test", params=params, reader=_dated)
            total = data.get("total") if isinstance(data, dict) else None
            return Page(hits(data), total if isinstance(total, int) else None, date)

        return read_pages(fetch, page_size=page_size, max_pages=max_pages)

    async def candidates(self, case: str) -> list[dict[str, Any]]:
        """The case's tagged variants (the hits of ``GET /api/candidates/{case}``)."""
        return hits(await self._call("GET", f"/api/candidates/{_segment(case)}"))

    async def report_listing(self, case: str) -> list[dict[str, Any]] | None:
        """The case's reports (``GET /api/test/v2/{case}/reports``, inferred: ``{"hits": [{"id",
        "type"}]}``), or None when the tenant does not serve that route (404)."""
        try:
            data: Any = await self._call("GET", f"/api/test/v2/{_segment(case)}/reports")
        except NotFound:
            return None
        return hits(data)

    async def openapi(self) -> dict[str, Any] | None:
        """The tenant's OpenAPI document, where it serves one (the JSON behind
        ``/api/apidoc/swagger``; its location is inferred), else None."""
        for path in OPENAPI_PATHS:
            try:
                data: Any = await self._call("GET", path)
            except PermanentError:
                continue
            if isinstance(data, dict) and isinstance(data.get("paths"), dict):
                return data
        return None

    async def download_report(
        self, case: str, report_type: str, report_id: str | int, out: BinaryIO
    ) -> int:
        """Stream a report into *out* (at most the report limit); the bytes written.

        The file is the caller's to create and to remove on failure (``batch.pull.paths``).
        """
        path = (
            f"/api/test/v2/{_segment(case)}/reports/{_segment(report_type)}/{_segment(report_id)}"
        )

        async def save(resp: aiohttp.ClientResponse) -> int:
            out.seek(0)  # a retried attempt starts the file again
            out.truncate()
            return await stream_to(resp, out)

        return await self._call("GET", path, reader=save, stream=True)

    # ------------------------------------------------------------------ users and actions

    async def org_users(self) -> list[dict[str, Any]]:
        """The organisation's users, fetched once per client."""
        async with self._users_lock:
            if self._users is None:
                self._users = hits(await self._call("GET", "/api/user/org_users/"))
            return self._users

    async def user_ids(self, emails: Sequence[str]) -> list[int]:
        """Map e-mails to user ids (case-insensitive); PermanentError names unknown ones."""
        by_email = {
            str(u.get("email", "")).strip().lower(): u.get("id") for u in await self.org_users()
        }
        unknown = [e for e in emails if not isinstance(by_email.get(e.strip().lower()), int)]
        if unknown:
            raise PermanentError(f"unknown user e-mail(s): {', '.join(unknown)}")
        return [int(by_email[e.strip().lower()]) for e in emails]  # type: ignore[arg-type]

    async def assign(self, case: str, user_ids: Sequence[int]) -> None:
        """Assign users to a case (idempotent)."""
        await self._call(
            "POST", f"/api/participant/{_segment(case)}",
            body={"action": "assign", "ids": list(user_ids)},
        )

    async def create_preset_group(
        self, case: str, *, name: str, gene_lists: Sequence[tuple[int, str]]
    ) -> dict[str, Any]:
        """Add a custom preset group of gene lists to a case (not idempotent)."""
        search = [
            {"id": gid, "name": gname, "type": "gene list", "value": gname}
            for gid, gname in gene_lists
        ]
        data: Any = await self._call(
            "POST", f"/api/test/{_segment(case)}/preset_group",
            body={"name": name, "filter": {"search": search}}, unsafe=True,
        )
        return _as_dict(data)

    # ------------------------------------------------------------------ samples and storage

    async def find_samples(
        self, name: str, *, sample_type: str = "fastq", exact: bool = True
    ) -> list[dict[str, Any]]:
        """Samples named *name*; a hit's ``note`` is the case it belongs to."""
        params = [("query", name), ("sampleType", sample_type)]
        if exact:
            params.append(("exact_match", "true"))
        return hits(await self._call("GET", "/api/sample/", params=params))

    async def sample(self, name: str) -> dict[str, Any] | None:
        """The first exact FASTQ sample named *name*, or None; cached (a failure is not).

        The payload's look-up (is this sample already on the server?). A create's own check
        for its case asks ``find_samples``, which is never cached: the answer changes as the
        run creates cases.
        """

        async def fetch() -> dict[str, Any] | None:
            for hit in await self.find_samples(name, sample_type="fastq", exact=True):
                if str(hit.get("name", name)) == name:
                    return hit
            return None

        return await self._samples.get(name, fetch)

    async def storage(self, storage_id: int) -> dict[str, Any]:
        """A storage provider's details (``scheme``…); cached, failures included."""

        async def fetch() -> dict[str, Any]:
            return _as_dict(await self._call("GET", f"/api/storage/{int(storage_id)}"))

        return await self._storages.get(int(storage_id), fetch)

    async def list_dir(self, storage_id: int, path: str) -> list[dict[str, str]]:
        """Every entry of a storage directory (all pages); cached per normalised path."""

        async def fetch() -> list[dict[str, str]]:
            entries: list[dict[str, str]] = []
            offset = 0
            route = f"/api/storage/{int(storage_id)}/fs/list"
            guard = PageGuard(f"{route}?path={path}")
            while True:
                params = [("from", str(offset)), ("size", str(_FS_PAGE)), ("path", path)]
                data: Any = await self._call("GET", route, params=params)
                resources = data.get("resources", []) if isinstance(data, dict) else []
                page = [
                    {str(k): str(v) for k, v in r.items() if v is not None}
                    for r in resources
                    if isinstance(r, dict)
                ]
                guard.check(offset, page)
                entries += page
                offset += _FS_PAGE
                if not (isinstance(data, dict) and data.get("has_more")) or not page:
                    return entries

        return await self._dirs.get((int(storage_id), _normalise_dir(path)), fetch)
