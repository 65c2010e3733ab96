"""Small helpers to read JSON bodies and build JSON and error answers cheaply."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_dumps_sorted = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


def json_answer(data: Any, status: int = 200, *, sort_keys: bool = False) -> web.Response:
    """A JSON response (compact encoding; the body is built once)."""
    body = (_dumps_sorted if sort_keys else _dumps)(data).encode()
    return web.Response(body=body, status=status, content_type="application/json")


def message(status: int, text: str) -> web.Response:
    """An error answered as ``{"message": text}``."""
    return json_answer({"message": text}, status)


def canned(status: int, body: Any) -> web.Response:
    """A fixture answer: plain text when *body* is a string, JSON otherwise."""
    if isinstance(body, str):
        return web.Response(text=body, status=status, content_type="text/plain")
    return json_answer(body, status)


class _Invalid:
    """Marks a body that is not valid JSON."""


INVALID: Any = _Invalid()
_BODY_KEY = web.RequestKey("sandbox_json", object)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, parsed once per request; None when empty, INVALID when malformed."""
    if _BODY_KEY in request:
        return request[_BODY_KEY]
    value: Any = None
    if request.body_exists:
        raw = await request.read()
        if raw.strip():
            try:
                value = json.loads(raw)
            except (ValueError, RecursionError):  # deep nesting: malformed, not a 500
                value = INVALID
    request[_BODY_KEY] = value
    return value
