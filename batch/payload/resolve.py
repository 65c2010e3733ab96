"""Look-ups the payload needs from the server: the ``Resolver`` protocol and its makers.

* ``ApiResolver``: over an ``api.Client`` (storage details, BaseSpace listings, samples);
* ``OfflineResolver``: no server (``validate`` without ``--host``): every look-up "not checked";
* ``CachedResolver``: wraps a resolver without a client of its own, sharing answers (and
  failures) across the families of a run.

Every look-up is cached once, in the one ``api.LookupCache``: a run's resolver
(``for_client``) asks the client, whose cache it is; ``CachedResolver`` keeps one for any
other resolver; the per-family ``Lookups`` adds none.

Failures are ``ResolveError`` carrying the server's message, which the checks report against
the row, as the official CLI does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from batch.errors import PermanentError, ResolveError

if TYPE_CHECKING:
    from batch.api import Client, LookupCache

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
        # imported here, not above: ``validate`` without a server loads this module and starts
        # without the HTTP client
        from batch.api.client import LookupCache

        self._resolver = resolver
        self._storages: LookupCache[int, Mapping[str, Any]] = LookupCache(keep=ResolveError)
        self._listings: LookupCache[tuple[int, str], Sequence[Mapping[str, str]]] = LookupCache(
            keep=ResolveError, limit=listing_limit
        )
        self._samples: LookupCache[str, Mapping[str, Any] | None] = LookupCache(keep=())

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """Storage details, asked once per id."""
        return await _answer(
            self._storages.get(storage_id, lambda: self._resolver.storage(storage_id))
        )

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """A BaseSpace directory, asked once while the cache holds it."""
        key = (storage_id, path)  # exact: a server message quotes the path as sent
        return await _answer(
            self._listings.get(key, lambda: self._resolver.list_dir(storage_id, path))
        )

    async def find_sample(self, name: str) -> Mapping[str, Any] | None:
        """An existing sample, asked once per name."""
        return await self._samples.get(name, lambda: self._resolver.find_sample(name))


async def _answer(found: Awaitable[_T]) -> _T:
    """The cached answer, or a fresh copy of the cached failure (raised once per ask)."""
    try:
        return await found
    except ResolveError as exc:
        raise ResolveError(exc.message) from None


class ApiResolver:
    """The resolver over an ``api.Client``: storage details, directory listings, samples, each
    cached by the client.

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
            return await self._client.sample(name)
        except PermanentError as err:
            raise ResolveError(err.message) from None


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


def for_client(client: Client) -> ApiResolver:
    """The resolver a run uses: the client's look-ups, each asked once per run (the client's
    cache is the run's one cache of look-ups)."""
    return ApiResolver(client)
