"""Per-family look-ups: storage schemes, BaseSpace aliases and ``auto`` file lists.

A family asks the same storage or directory several times (checks, then build); ``Lookups``
remembers the answers for that family, on top of whatever the resolver caches for the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from batch.errors import ResolveError
from batch.payload.resolve import Resolver
from batch.payload.rules import last_segment, parent_dir


@dataclass
class Lookups:
    """Per-family memo of resolver answers (the client caches across families)."""

    resolver: Resolver
    storages: dict[int, Mapping[str, Any] | ResolveError] = field(default_factory=dict)
    listings: dict[tuple[int, str], Sequence[Mapping[str, str]]] = field(default_factory=dict)

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """Storage details, asked once per family (failures too)."""
        found = await self._storage_answer(storage_id)
        if isinstance(found, ResolveError):
            raise ResolveError(found.message)  # a new one: the kept one holds no frames
        return found

    async def is_basespace(self, storage_id: int) -> bool:
        """Whether the storage is BaseSpace (an unknown storage is not)."""
        # the answer or the failure, read back: an exception costs more than the check
        found = await self._storage_answer(storage_id)
        return not isinstance(found, ResolveError) and found.get("scheme") == "basespace"

    async def _storage_answer(self, storage_id: int) -> Mapping[str, Any] | ResolveError:
        if storage_id not in self.storages:
            try:
                self.storages[storage_id] = await self.resolver.storage(storage_id)
            except ResolveError as exc:
                # kept without its traceback: its frames would hold this memo in a cycle,
                # garbage that only the collector frees (slow with a big manifest in memory)
                self.storages[storage_id] = exc.with_traceback(None)
        return self.storages[storage_id]

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """A directory's entries, asked once per family."""
        key = (storage_id, path)
        if key not in self.listings:
            self.listings[key] = await self.resolver.list_dir(storage_id, path)
        return self.listings[key]

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
