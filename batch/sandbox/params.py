"""Reading a request: query integers, the JSON object body, the case named in the path."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from batch.sandbox.responses import INVALID, message, read_json
from batch.sandbox.runtime import runtime
from batch.sandbox.state import Case


class BadQuery(Exception):
    """A query parameter has a bad value."""


def int_param(request: web.Request, key: str, default: int) -> int:
    """A non-negative integer query parameter (*default* when absent or empty)."""
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{key} must be an integer") from None
    if value < 0:
        raise BadQuery(f"{key} must not be negative")
    return value


async def json_object(request: web.Request) -> dict[str, Any] | web.Response:
    """The body as a JSON object, or the 400 answer."""
    body = await read_json(request)
    if body is INVALID:
        return message(400, "Malformed JSON body")
    if not isinstance(body, dict):
        return message(400, "Request body must be a JSON object")
    return body


def case_or_404(request: web.Request) -> Case | web.Response:
    """The case named in the path, or the 404 answer."""
    name = request.match_info["case"]
    case = runtime(request).case(name)
    return case if case is not None else message(404, f"Test {name} not found")


async def case_and_body(request: web.Request) -> tuple[Case, dict[str, Any]] | web.Response:
    """The case named in the path and the JSON object body, or the error answer."""
    case = case_or_404(request)
    if isinstance(case, web.Response):
        return case
    body = await json_object(request)
    return body if isinstance(body, web.Response) else (case, body)
