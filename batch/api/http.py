r"""HTTP mechanics: the tenant URL and loopback hosts, path segments, how much of an answer is
read and reading it within those bounds, redirects, and the translation of foreign errors and
error answers into ``batch.errors`` (with the ``Scrubber`` that keeps secrets out of messages).

Addresses: which hosts are loopback (the only ones allowed plain HTTP or an open listener),
and the tenant base URL a client talks to.

Names that go into a request path (case names, report types and ids), checked first.

A segment is percent-encoded, but some values would still change the route or mean nothing:
``.`` and ``..`` (``GET /api/test/../`` is ``GET /api/``), an empty name, ``/`` or ``\``
(servers and proxies that decode ``%2F`` see another route), and control or invisible
characters. Those are refused before anything is sent, with a ``PermanentError`` that is
recorded against the case or family, as any other refusal.

How much of an answer the client reads: every body is bounded, whatever the server sends.

A JSON answer is read up to ``body`` bytes (``EMG_MAX_BODY_MB``, default 64 MB), an error
answer up to ``error`` bytes (its message is all that is used), and a report download up to
``report`` bytes (``EMG_MAX_REPORT_MB``, default 2048 MB). A download may run past
``--timeout`` while its data keeps coming: each byte received moves its deadline on by
``1 / REPORT_MIN_RATE`` seconds, so a server trickling a few bytes a second is still cut off.
One MB is 1,048,576 bytes.

Reading answers within bounds: a JSON body up to its limit, an error to a few KB, a download
up to its own limit, each read incrementally so memory stays bounded whatever the server sends.

The pipeline (``pipeline``) makes one :class:`Attempt` current (a context variable) while an
answer is read, so every reader, an endpoint's own included, honours the client's limits and
deadline without each endpoint passing them along.

Redirects, decided by the client and not by aiohttp: the password and patient data go to
the configured host only.

A GET redirected to the same origin (scheme, host and port) is followed, a few hops at most;
anything else (another host or port, HTTPS to HTTP, a POST or PUT, a redirect without a
Location, too many hops) stops with :class:`RedirectRefused` naming the Location (without its
query, cut short). Nothing is sent to the Location in that case.

Foreign errors and HTTP error answers into the ``batch.errors`` tree: the one place.

``transport_error`` maps aiohttp and timeout exceptions, ``status_error`` maps an HTTP error
answer. A non-idempotent request (*unsafe*: a create, a preset group) that may have reached the
server becomes ``AmbiguousCreate``, never a retryable error: it must be reconciled, not re-sent.
Every text a server sent passes a ``Scrubber`` first, so no secret it echoes is stored or shown.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import math
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote, quote_plus, urlsplit

import orjson
from yarl import URL

if TYPE_CHECKING:
    # imported where it is used at run time: the command line loads this module (loopback
    # hosts) and must start without aiohttp
    import aiohttp

from batch.errors import (
    AmbiguousCreate,
    ApiError,
    AuthError,
    BodyTooLarge,
    ConnectError,
    NotFound,
    PermanentError,
    RateLimited,
    RedirectRefused,
    RequestTimeout,
    ServerError,
    UsageError,
)
from batch.text import quoted

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the usual names of localhost."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_host(host: str) -> str:
    """Return the base URL for *host*: HTTPS, or HTTP on a loopback host only; no trailing /."""
    host = host.strip()
    if "://" not in host:
        host = _with_https(host)
    parts = urlsplit(host)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"not a usable host URL: {host!r} (expected https://<tenant>.emg.illumina.com)"
        )
    if parts.username is not None or parts.password is not None:
        # credentials in a URL end up in logs, ledgers and links: take them from the env
        raise UsageError(
            "the host URL must not carry a user or password; set EMG_USERNAME and "
            "EMG_PASSWORD (or EMG_TOKEN) instead"
        )
    if scheme == "http" and not is_loopback(parts.hostname):
        raise UsageError(
            f"refusing plain HTTP to {parts.hostname}: Emedgene hosts need https:// "
            "(http:// is allowed only for loopback hosts such as 127.0.0.1 or localhost)"
        )
    return f"{scheme}://{parts.netloc}{parts.path}".rstrip("/")


def _with_https(host: str) -> str:
    """*host* given without a scheme: https:// where only HTTPS is allowed; on loopback, where
    plain HTTP is allowed too, which one is meant cannot be guessed."""
    name = urlsplit("https://" + host).hostname
    if name is not None and is_loopback(name):
        raise UsageError(f"the host has no scheme: use https://{host} or, on loopback only, "
                         f"http://{host}")
    return "https://" + host


def tls_hint(given: str, base: str) -> str | None:
    """What to add to a TLS failure when the host *given* had no scheme (*base* is the URL it
    became): that https:// was assumed."""
    if "://" in given:
        return None
    return f"--host has no scheme, so {base} was assumed; check that the host serves HTTPS"


NAME_SHOWN = 100  # characters of a refused name shown in a message
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_PLAIN = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9_.~-]*")  # unreserved: encoded as they are


def problem(name: str) -> str | None:
    """Why *name* cannot be a path segment, or None when it can."""
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return f"{name!r} would change the route"
    if "/" in name or "\\" in name:
        return "it contains a slash"
    bad = next((c for c in name if unicodedata.category(c) in _INVISIBLE), None)
    if bad is not None:
        return f"it contains the control character U+{ord(bad):04X}"
    return None


def shown_name(name: str) -> str:
    """*name* fit for a one-line message: quoted, escaped, cut short."""
    return quoted(name, NAME_SHOWN)


def check(name: str) -> str:
    """*name* itself when it can be a path segment; PermanentError naming it otherwise."""
    why = problem(name)
    if why is not None:
        raise PermanentError(f"refusing the name {shown_name(name)}: {why}; nothing was sent")
    return name


def segment(value: str | int) -> str:
    """*value* checked and percent-encoded as one path segment."""
    text = str(value)
    if _PLAIN.fullmatch(text):  # every Emedgene name: nothing to check or encode
        return text
    return quote(check(text), safe="")


MB = 1 << 20
BODY_ENV = "EMG_MAX_BODY_MB"
REPORT_ENV = "EMG_MAX_REPORT_MB"
#: Bytes per second a report download must average to be allowed past ``--timeout``.
REPORT_MIN_RATE = 128 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyLimits:
    """Size limits of one client, in bytes."""

    body: int = 64 * MB
    report: int = 2048 * MB
    error: int = 8 * 1024

    @classmethod
    def choose(
        cls,
        *,
        body_mb: float | None = None,
        report_mb: float | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> BodyLimits:
        """The limits given (in MB), else from ``EMG_MAX_BODY_MB``/``EMG_MAX_REPORT_MB``,
        else the defaults; UsageError for a value that is not a positive number."""
        default = cls()
        return cls(
            body=_bytes(body_mb, "max_body_mb", env.get(BODY_ENV), BODY_ENV, default.body),
            report=_bytes(report_mb, "max_report_mb", env.get(REPORT_ENV), REPORT_ENV,
                          default.report),
        )


def _bytes(given: float | None, name: str, text: str | None, var: str, default: int) -> int:
    if given is not None:
        return _positive(given, name, repr(given))
    if text is None or not text.strip():
        return default
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    return _positive(value, var, quoted(text.strip()))


def _positive(mb: float, name: str, shown: str) -> int:
    if not math.isfinite(mb) or mb <= 0:
        raise UsageError(f"{name} must be a positive number of megabytes, got {shown}")
    return max(1, int(mb * MB))


def megabytes(size: int) -> str:
    """*size* bytes in MB, as the limits are written (``64 MB``, ``0.5 MB``)."""
    return f"{size / MB:g} MB"


_CHUNK = 1 << 16


@dataclass(slots=True)
class Attempt:
    """One request attempt being answered: its route, its limits and its deadline."""

    method: str
    path: str
    limits: BodyLimits
    deadline: asyncio.Timeout | None = None

    def extend(self, seconds: float) -> None:
        """Move the deadline *seconds* later (a download that keeps receiving data)."""
        when = self.deadline.when() if self.deadline is not None else None
        if when is not None and self.deadline is not None:
            self.deadline.reschedule(when + seconds)


_current: ContextVar[Attempt | None] = ContextVar("emg_batch_attempt", default=None)


def begin(attempt: Attempt) -> Token[Attempt | None]:
    """Make *attempt* the one whose answer is being read, until :func:`end`."""
    return _current.set(attempt)


def end(token: Token[Attempt | None]) -> None:
    """Back to the attempt (if any) current before :func:`begin`."""
    _current.reset(token)


def current(resp: aiohttp.ClientResponse) -> Attempt:
    """The attempt being answered (default limits outside the pipeline)."""
    found = _current.get()
    return found if found is not None else Attempt(resp.method, resp.url.path, BodyLimits())


def _too_large(attempt: Attempt, limit: int, what: str, setting: str) -> BodyTooLarge:
    return BodyTooLarge(
        f"the {what} of {attempt.method} {attempt.path} is larger than the "
        f"{megabytes(limit)} limit and was not read further (raise it with {setting})",
        limit=limit, method=attempt.method, path=attempt.path)


async def read_capped(resp: aiohttp.ClientResponse) -> bytes | bytearray:
    """The whole body, at most the JSON limit; BodyTooLarge past it (the rest is not read)."""
    attempt = current(resp)
    limit = attempt.limits.body
    declared = resp.content_length
    if declared is not None and declared > limit:
        raise _too_large(attempt, limit, "answer", BODY_ENV)
    if declared is not None and resp.headers.get("Content-Encoding", "identity") == "identity":
        return await resp.read()  # exactly the declared length: bounded, and read at once
    body = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise _too_large(attempt, limit, "answer", BODY_ENV)
    return body


async def read_error(resp: aiohttp.ClientResponse) -> str:
    """The start of an error answer (a few KB: its message is all that is used)."""
    limit = current(resp).limits.error
    data = bytearray()
    while len(data) < limit:
        chunk = await resp.content.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", errors="replace")


async def stream_to(resp: aiohttp.ClientResponse, out: BinaryIO) -> int:
    """Write the body into *out*, at most the report limit; the number of bytes written.

    Each chunk moves the attempt's deadline on in proportion to its size, so a large report
    on a working connection completes while a trickle is still cut off.
    """
    attempt = current(resp)
    limit = attempt.limits.report
    if resp.content_length is not None and resp.content_length > limit:
        raise _too_large(attempt, limit, "report", REPORT_ENV)
    written = earned = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        written += len(chunk)
        if written > limit:
            raise _too_large(attempt, limit, "report", REPORT_ENV)
        out.write(chunk)  # 64 KB to the page cache: not worth a thread
        earned += len(chunk)
        if earned >= REPORT_MIN_RATE:  # a second's worth: move the deadline on by a second
            attempt.extend(earned / REPORT_MIN_RATE)
            earned = 0
    return written


MAX_HOPS = 3
LOCATION_SHOWN = 100  # characters of a Location shown in a message


def is_redirect(status: int) -> bool:
    """True for a 3xx answer (followed or refused, never read as a result)."""
    return 300 <= status < 400


def origin(url: URL) -> tuple[str, str, int | None]:
    """Scheme, host and port (the default port when none is written)."""
    return url.scheme.lower(), (url.host or "").lower(), url.port


def shown_location(location: URL | str, redact: Callable[[str], str] = str) -> str:
    """A Location fit for a message: no user, password, query or fragment; cut short."""
    if isinstance(location, URL):
        try:
            text = str(location.with_user(None).with_query(None).with_fragment(None))
        except ValueError:  # a relative URL has no user to drop
            text = str(location.with_query(None).with_fragment(None))
    else:
        text = location
    text = redact(text)
    return quoted(text, LOCATION_SHOWN)


def follow(
    base: URL,
    current: URL,
    *,
    method: str,
    status: int,
    location: str | None,
    hops: int,
    redact: Callable[[str], str] = str,
) -> URL:
    """Where to send *method* next after a *status* redirect of *current* to *location*.

    *base* is the configured host; *hops* the redirects followed so far. RedirectRefused
    unless the redirect may be followed.
    """
    where = {"status": status, "method": method, "path": current.path}
    if not location:
        raise RedirectRefused(f"the server answered HTTP {status} without a Location",
                              location="", **where)
    try:
        target = current.join(URL(location.strip()))
    except ValueError:
        refused = f"HTTP {status} to an unreadable Location {shown_location(location, redact)}"
        raise RedirectRefused(refused, location=location[:LOCATION_SHOWN], **where) from None
    reason = _refusal(base, target, method=method, hops=hops)
    if reason is not None:
        name = shown_location(target, redact)
        raise RedirectRefused(f"HTTP {status} redirects to {name}: not followed, {reason}",
                              location=name.strip("'\""), **where)
    return target


def _refusal(base: URL, target: URL, *, method: str, hops: int) -> str | None:
    """Why a redirect to *target* is not followed, or None when it may be."""
    if base.scheme == "https" and target.scheme != "https":
        return "it leaves HTTPS (check --host)"
    if origin(target) != origin(base):
        return f"it leads away from {base.host} (check --host; nothing was sent there)"
    if method != "GET":
        return f"a {method} is never re-sent to another address (check --host)"
    if hops >= MAX_HOPS:
        return f"more than {MAX_HOPS} redirects in a row"
    return None


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
    import aiohttp  # already loaded: the request that failed went through it

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
