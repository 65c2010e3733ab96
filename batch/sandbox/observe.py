"""Request statistics and the request record file (never headers, never passwords)."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import IO, Any

from aiohttp import web

UNMATCHED = "<unmatched>"


def route_key(request: web.Request) -> str:
    """``"<METHOD> <route pattern>"``, without a trailing slash so both forms count as one."""
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return f"{request.method} {UNMATCHED}"
    pattern = resource.canonical
    if len(pattern) > 1 and pattern.endswith("/"):
        pattern = pattern[:-1]
    return f"{request.method} {pattern}"


class Stats:
    """Counts answers per route and status code."""

    def __init__(self) -> None:
        self.counts: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, key: str, status: str) -> None:
        """Count one answer (*status* is the code as text, or ``"dropped"``)."""
        self.counts[key][status] += 1

    def as_json(self) -> dict[str, Any]:
        """``{"requests": {"<METHOD> <pattern>": {"<status>": count}}}``."""
        return {"requests": {k: dict(v) for k, v in self.counts.items()}}


def _redact(body: Any) -> Any:
    if isinstance(body, dict) and "password" in body:
        return {**body, "password": "<redacted>"}
    return body


class Recorder:
    """Appends one JSON line per request, each written as it happens (``tail -f`` shows it,
    a killed sandbox loses none). The file holds request bodies (patient data): mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def open(self) -> None:
        """Open the file for appending, line-buffered, created 0600 whatever the umask."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8", buffering=1)

    def write(self, request: web.Request, body: Any) -> None:
        """Record method, path, query pairs and the JSON body (passwords redacted)."""
        if self._file is None:
            return
        line = {"method": request.method, "path": request.path,
                "query": [[k, v] for k, v in request.query.items()], "body": _redact(body)}
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")

    def flush(self) -> None:
        """Push buffered lines to the file."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close."""
        if self._file is not None:
            self._file.close()
            self._file = None
