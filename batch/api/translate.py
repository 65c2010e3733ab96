"""Foreign errors and HTTP error answers into the ``batch.errors`` tree: the one place.

``transport_error`` maps aiohttp and timeout exceptions, ``status_error`` maps an HTTP error
answer. A non-idempotent request (*unsafe*: a create, a preset group) that may have reached the
server becomes ``AmbiguousCreate``, never a retryable error: it must be reconciled, not re-sent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from batch.errors import (
    AmbiguousCreate,
    ApiError,
    AuthError,
    ConnectError,
    NotFound,
    PermanentError,
    RateLimited,
    RequestTimeout,
    ServerError,
    UsageError,
)

#: Answers that say the server is down or overloaded for everyone.
SERVER_STATUSES = (500, 502, 503, 504)


def server_message(status: int, text: str) -> str:
    """The server's message: JSON ``{"message"}``, a JSON string, or the plain-text body."""
    fallback = f"Request failed with status code {status}"
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip() or fallback
    if isinstance(data, dict):
        message = data.get("message")
        return message.strip() if isinstance(message, str) and message.strip() else fallback
    if isinstance(data, str) and data.strip():
        return data.strip()
    return fallback


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait for a ``Retry-After`` value (seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def transport_error(
    exc: BaseException, *, method: str, path: str, unsafe: bool, hint: str | None = None
) -> ApiError | UsageError:
    """Translate an aiohttp or timeout exception (*hint*: what to add to a TLS failure).

    *unsafe* requests are retried only when the server certainly did not act; anything that
    may have reached it becomes :class:`AmbiguousCreate`. A timeout is the attempt's whole
    deadline running out (connect, send and the answer's last byte).
    """
    if isinstance(exc, aiohttp.ClientSSLError):
        what = ("verification" if isinstance(exc, aiohttp.ClientConnectorCertificateError)
                else "handshake")
        return UsageError(f"TLS {what} failed for {path} ({type(exc).__name__})"
                          + (f"; {hint}" if hint else ""))
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectError("timed out connecting to the server", method=method, path=path)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(
            f"cannot connect to the server: {exc.os_error}", method=method, path=path
        )
    if isinstance(exc, TimeoutError):
        if unsafe:
            return AmbiguousCreate(
                "no answer in time after the request was sent", method=method, path=path
            )
        return RequestTimeout("no answer in time", method=method, path=path)
    reason = f"connection closed by the server ({type(exc).__name__})"
    if unsafe:
        return AmbiguousCreate(f"{reason} after the request was sent", method=method, path=path)
    return ConnectError(reason, method=method, path=path)


def status_error(
    status: int,
    message: str,
    *,
    method: str,
    path: str,
    unsafe: bool,
    retry_after: float | None = None,
) -> ApiError:
    """The exception for an HTTP error answer (*message* from :func:`server_message`)."""
    where = {"status": status, "method": method, "path": path}
    if status in (401, 403):
        return AuthError(message, status=status, method=method, path=path)
    if status == 404:
        return NotFound(message, status=status, method=method, path=path)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, **where)
    if status == 408:
        return RequestTimeout(message, status=status, method=method, path=path)
    if status in SERVER_STATUSES:
        # A 503 is refused work; any other 5xx may come after the server acted.
        if unsafe and status != 503:
            return AmbiguousCreate(f"outcome unknown after HTTP {status}: {message}",
                                   status=status, method=method, path=path)
        return ServerError(message, status=status, method=method, path=path)
    return PermanentError(message, status=status, method=method, path=path)
