"""Foreign errors and HTTP error answers into the ``batch.errors`` tree: the one place.

``transport_error`` maps aiohttp and timeout exceptions, ``status_error`` maps an HTTP error
answer. A non-idempotent request (*unsafe*: a create, a preset group) that may have reached the
server becomes ``AmbiguousCreate``, never a retryable error: it must be reconciled, not re-sent.
Every text a server sent passes a ``Scrubber`` first, so no secret it echoes is stored or shown.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, quote_plus

import aiohttp
import orjson

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
#: What stands for a secret removed from a server's text.
REDACTED = "<redacted>"
MIN_SECRET = 4


def _forms(secret: str) -> set[str]:
    """The ways a server may echo *secret*: as is, JSON-escaped (ASCII or not, ``/`` as
    ``\\/`` or not), URL-encoded (``%20`` or ``+``, ``/`` kept or not), HTML-escaped."""
    escaped = json.dumps(secret)[1:-1]
    return {secret, escaped, escaped.replace("/", "\\/"),
            json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret, safe=""),
            quote(secret), quote_plus(secret), quote_plus(secret, safe="/"), html.escape(secret)}


def _pattern(form: str) -> str:
    # percent escapes match in either case (%2f and %2F)
    return "".join(f"%(?i:{re.escape(part[:2])}){re.escape(part[2:])}" if i else re.escape(part)
                   for i, part in enumerate(form.split("%")))


class Scrubber:
    """Removes secrets (a password, tokens, any configured secret) from text a server sent,
    in every form a server may echo them, before the text is stored or shown. Secrets
    shorter than ``MIN_SECRET`` characters are left (they would mangle every message)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        forms = {f for s in secrets if s and len(s) >= MIN_SECRET for f in _forms(s)}
        ordered = sorted(forms, key=len, reverse=True)  # the longest form first
        self._re = re.compile("|".join(map(_pattern, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        """*text* with every form of every secret replaced by ``<redacted>``."""
        return self._re.sub(REDACTED, text) if self._re is not None else text


def server_message(status: int, text: str, scrub: Callable[[str], str] = str) -> str:
    """The server's message: JSON ``{"message"}``, a JSON string, or the plain-text body;
    *scrub* removes secrets from the body and from the message (a framework validating the
    login may echo its input, the password included)."""
    fallback = f"Request failed with status code {status}"
    text = scrub(text)
    try:
        data = orjson.loads(text)  # strict and depth-limited: a deep body is plain text
    except ValueError:
        return text.strip() or fallback
    if isinstance(data, dict):
        message = data.get("message")
        data = message if isinstance(message, str) else None
    if isinstance(data, str) and data.strip():
        return scrub(data.strip())  # once more: an escape the raw text hid is undone now
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
