"""Bearer-token checks (``Authorization`` or ``Emgauthorization``): 401 unknown; an expired token
answers 403 or 401, as configured (real clients meet both)."""

from __future__ import annotations

import time

from aiohttp import web

from batch.sandbox.responses import message
from batch.sandbox.state import SandboxState, User


def _bearer(value: str, *, prefix_required: bool) -> str | None:
    parts = value.strip().split(None, 1)
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1].strip() or None
    if not prefix_required and len(parts) == 1:
        return parts[0]
    return None


def request_token(request: web.Request) -> str | None:
    """The token a request carries, or None when it carries none that is well formed."""
    value = request.headers.get("Authorization", "")
    if value.strip():
        return _bearer(value, prefix_required=True)
    value = request.headers.get("Emgauthorization", "")
    if value.strip():
        return _bearer(value, prefix_required=False)
    return None


def authenticate(request: web.Request, state: SandboxState, ttl: float, *,
                 expired_status: int = 403) -> User | web.Response:
    """The user behind the request, or the 401/403 answer to send instead."""
    token = request_token(request)
    if token is None:
        return message(401, "Missing or malformed authorization header")
    entry = state.tokens.get(token)
    if entry is None:
        return message(401, "Invalid token")
    user, issued = entry
    if time.time() - issued > ttl:
        return message(expired_status, "Token expired")
    return user
