"""Per-family look-ups: storage schemes, BaseSpace aliases and ``auto`` file lists.

A family asks the same storage or directory several times (checks, then build); ``Lookups``
asks its resolver each time and keeps nothing itself: the run's one cache of look-ups is the
client's (``api.LookupCache``, see ``resolve``), so a repeated ask costs no request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batch.errors import ResolveError
from batch.payload.resolve import Resolver
from batch.payload.rules import last_segment, parent_dir


@dataclass
class Lookups:
    """A family's look-ups over the run's resolver (which caches them across families)."""

    resolver: Resolver

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """Storage details (ResolveError for an unknown storage)."""
        return await self.resolver.storage(storage_id)

    async def is_basespace(self, storage_id: int) -> bool:
        """Whether the storage is BaseSpace (an unknown storage is not)."""
        try:
            found = await self.resolver.storage(storage_id)
        except ResolveError:
            return False
        return found.get("scheme") == "basespace"

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """A directory's entries."""
        return await self.resolver.list_dir(storage_id, path)

    async def alias(self, storage_id: int, path: str) -> str:
        """Human name of a BaseSpace file id path; ResolveError when it is not there."""
        wanted = last_segment(path)
        for entry in await self.list_dir(storage_id, parent_dir(path)):
            if entry.get("name") == wanted:
                return str(entry.get("alias", ""))
        raise ResolveError(f"{path} is not available")

    async def auto_files(
        self, storage_id: int, project: str, biosample: str
    ) -> list[tuple[str, str]] | None:
        """``(id path, alias)`` of every file of a biosample; None when it is not found."""
        try:
            p = _find(await self.list_dir(storage_id, "/projects"), project)
            if p is None:
                return None
            b = _find(await self.list_dir(storage_id, f"/projects/{p}/biosamples"), biosample)
            if b is None:
                return None
            base = f"/projects/{p}/biosamples/{b}/datasets"
            files: list[tuple[str, str]] = []
            for dataset in await self.list_dir(storage_id, f"{base}/"):
                folder = f"{base}/{dataset['name']}/sequenced files"
                for entry in await self.list_dir(storage_id, f"{folder}/"):
                    files.append((f"{folder}/{entry['name']}", str(entry.get("alias", ""))))
            return files
        except ResolveError:
            return None


def _find(entries: Sequence[Mapping[str, str]], alias: str) -> str | None:
    for entry in entries:
        if entry.get("alias") == alias:
            return str(entry["name"])
    return None
