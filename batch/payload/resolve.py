"""Look-ups the payload needs from the server: the ``Resolver`` protocol and its makers.

* ``ApiResolver``: over an ``api.Client`` (storage details, BaseSpace listings, samples);
* ``OfflineResolver``: no server (``validate`` without ``--host``): every look-up "not checked";
* ``CachedResolver``: wraps another, sharing answers (and failures) across the families of a run.

Failures are ``ResolveError`` carrying the server's message, which the checks report against
the row, as the official CLI does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from batch.errors import PermanentError, ResolveError

if TYPE_CHECKING:
    from batch.api import Client

_T = TypeVar("_T")


class Resolver(Protocol):
    """The API look-ups the payload needs."""

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """Storage details (``{"id", "scheme", ...}``); ``ResolveError`` when unknown."""
        ...

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """Every entry (all pages) of a BaseSpace directory: ``[{"name", "alias"}]``."""
        ...

    async def find_sample(self, name: str) -> Mapping[str, Any] | None:
        """First exact hit of ``/api/sample`` (FASTQ samples), or None."""
        ...


class CachedResolver:
    """Wraps a resolver with caches shared by every family of a run.

    Storage details and sample hits never change during a run, so each is asked once; BaseSpace
    listings are kept up to ``listing_limit`` directories (then the cache starts again).
    Failures are cached too: an unknown storage id costs one request, not one per family.
    """

    def __init__(self, resolver: Resolver, *, listing_limit: int = 4096) -> None:
        self._resolver = resolver
        self._limit = listing_limit
        self._storages: dict[int, Mapping[str, Any] | ResolveError] = {}
        self._listings: dict[tuple[int, str], Sequence[Mapping[str, str]] | ResolveError] = {}
        self._samples: dict[str, Mapping[str, Any] | None] = {}

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """Storage details, asked once per id."""
        if storage_id not in self._storages:
            try:
                self._storages[storage_id] = await self._resolver.storage(storage_id)
            except ResolveError as exc:
                self._storages[storage_id] = exc
        return _answer(self._storages[storage_id])

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """A BaseSpace directory, asked once while the cache holds it."""
        key = (storage_id, path)  # exact: a server message quotes the path as sent
        if key not in self._listings:
            if len(self._listings) >= self._limit:
                self._listings.clear()
            try:
                self._listings[key] = await self._resolver.list_dir(storage_id, path)
            except ResolveError as exc:
                self._listings[key] = exc
        return _answer(self._listings[key])

    async def find_sample(self, name: str) -> Mapping[str, Any] | None:
        """An existing sample, asked once per name."""
        if name not in self._samples:
            self._samples[name] = await self._resolver.find_sample(name)
        return self._samples[name]


def _answer(found: _T | ResolveError) -> _T:
    """The cached answer, or a fresh copy of the cached failure (raised once per ask)."""
    if isinstance(found, ResolveError):
        raise ResolveError(found.message)
    return found


class ApiResolver:
    """The resolver over an ``api.Client``: storage details, directory listings, samples.

    Permanent failures become ``ResolveError`` carrying the server's message, which the
    manifest layer reports against the row.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """Storage details, as the payload builder needs them."""
        try:
            return await self._client.storage(storage_id)
        except PermanentError as err:
            raise ResolveError(err.message) from None

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """All entries of a storage directory."""
        try:
            return await self._client.list_dir(storage_id, path)
        except PermanentError as err:
            raise ResolveError(err.message) from None

    async def find_sample(self, name: str) -> Mapping[str, Any] | None:
        """The first exact fastq sample named *name*, or None."""
        try:
            hits = await self._client.find_samples(name, sample_type="fastq", exact=True)
        except PermanentError as err:
            raise ResolveError(err.message) from None
        for hit in hits:
            if str(hit.get("name", name)) == name:
                return hit
        return None


class OfflineResolver:
    """A resolver for ``validate`` without a server: every look-up is reported as not checked."""

    MESSAGE = "not checked without a server (pass --host or --sandbox)"

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """Raise: no server."""
        raise ResolveError(self.MESSAGE)

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """Raise: no server."""
        raise ResolveError(self.MESSAGE)

    async def find_sample(self, name: str) -> Mapping[str, Any] | None:
        """Raise: no server."""
        raise ResolveError(self.MESSAGE)


def for_client(client: Client) -> CachedResolver:
    """The resolver a run uses: the client's look-ups, each asked once per run."""
    return CachedResolver(ApiResolver(client))
