"""A resolver answering from the conformance ``fixture.json``, as its README describes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from batch.payload import ResolveError
from tests.corpus import CONFORMANCE_DIR, FIXTURE

__all__ = ["CONFORMANCE_DIR", "FIXTURE", "FixtureResolver", "server_message"]


class FixtureResolver:
    """Storages, BaseSpace trees and samples from the fixture; counts the calls it answers."""

    def __init__(self, fixture: Path | Mapping[str, Any] = FIXTURE) -> None:
        data = json.loads(Path(fixture).read_text()) if isinstance(fixture, Path) else fixture
        self.data: Mapping[str, Any] = data
        self.calls: dict[str, int] = {"storage": 0, "list_dir": 0, "find_sample": 0}

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """``GET /api/storage/{id}``."""
        self.calls["storage"] += 1
        found = self.data["storages"].get(str(storage_id))
        if found is None:
            raise ResolveError(f"Storage provider {storage_id} not found")
        return dict(found)

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """Every page of ``GET /api/storage/{id}/fs/list``; the path is normalised."""
        self.calls["list_dir"] += 1
        tree = self.data["fs"].get(str(storage_id), {})
        key = "/" + path.strip("/")
        if key not in tree:
            raise ResolveError(f"Path {path} not found")
        return [dict(entry) for entry in tree[key]]

    async def find_sample(self, name: str) -> Mapping[str, Any] | None:
        """First exact hit of ``GET /api/sample``."""
        self.calls["find_sample"] += 1
        for sample in self.data["samples"]:
            if sample["name"] == name:
                return dict(sample)
        return None


def server_message(answer: Mapping[str, Any]) -> str:
    """What the official CLI reports for a failed call (BEHAVIOUR §5.6)."""
    body = answer["body"]
    if isinstance(body, str):
        return body
    if isinstance(body, Mapping) and "message" in body:
        return str(body["message"])
    return f"Request failed with status code {answer['status']}"
