"""The request pipeline: one session to one host, every request through the limiter, retries
with backoff and a run-wide budget, the hold while the server is down, re-login, error
translation, deadlines and body limits; with the counters it keeps and the server's clock it
reads from ``Date`` headers.

What a client counts: requests, answers by status, retries, 429s, logins, ambiguity.

The server's clock, as its answers tell it: the ``Date`` header of every answer.

Whether a case was made by a create whose answer was lost is decided from the server's own
times (the case's ``created`` against the server's time when the create began), never from the
workstation's clock, which may be minutes off. The ``Date`` header (RFC 9110 §6.6.1; every
HTTP server sends it, second resolution) gives the server's time; between answers it is carried
forward with the monotonic clock, which a wrong wall clock does not move.

Retry policy: how many attempts, how long to wait between them, and a run-wide retry budget.

Backoff is capped exponential with *full jitter* (sleep = uniform(0, min(cap, base * 2**n))),
which spreads retries of many workers better than plain or equal jitter. The budget is the
AWS "retry quota": a client-wide bucket of tokens that retries spend and successes refill, so
a widespread outage stops retries quickly instead of multiplying traffic.

The outage breaker: while a server that has answered before looks down, hold every request.

Without it, each request would spend its own attempts and the run's retry budget on a server
that is down for everyone; with it, the whole pool waits on the limiter and probes again.

The request pipeline: one logical request in, its answer (or one ``batch.errors`` error) out.

Every request (look-ups, retries and logins included) waits on one shared rate limiter, carries
the current token, and on failure is retried with capped, fully jittered backoff under a
run-wide retry budget; 401/403 triggers one shared re-login; an outage holds every request
(``Outage``). A non-idempotent request whose outcome is unknown is never re-sent.

Every attempt has one deadline, ``timeout`` seconds from the start of sending to the last byte
of the answer (a download's moves on while data keeps coming, see ``http.BodyLimits``); every
body is read within its limit (``http.read_capped``); redirects are the pipeline's decision,
never aiohttp's: only a GET to the same origin is followed (``http.follow``).

This layer is asyncio, not anyio: aiohttp, the transport, runs on asyncio only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from importlib import metadata
from typing import Any, TypedDict, TypeVar

import aiohttp
import orjson
from yarl import URL

from batch.api.auth import LOGIN_PATH, Auth, Credentials, Secret, TokenRefused, token_of
from batch.api.http import (
    Attempt,
    BodyLimits,
    begin,
    end,
    follow,
    is_redirect,
    normalise_host,
    parse_retry_after,
    read_capped,
    read_error,
    server_message,
    status_error,
    tls_hint,
    transport_error,
)
from batch.api.limiter import AdaptiveLimiter, FixedRateLimiter, Limiter
from batch.errors import (
    AmbiguousCreate,
    ApiError,
    ConnectError,
    PermanentError,
    RateLimited,
    RequestTimeout,
    RetriesExhausted,
    ServerError,
    TransientError,
    UsageError,
)


@dataclass(slots=True)
class ClientStats:
    """Counters for the run summary and the benchmarks."""

    requests: int = 0
    responses: dict[int, int] = field(default_factory=dict)
    retries: int = 0
    rate_limited: int = 0
    logins: int = 0
    ambiguous: int = 0
    retry_budget_left: int = 0
    outage_waits: int = 0

    def count_response(self, status: int) -> None:
        """Record one HTTP answer."""
        self.responses[status] = self.responses.get(status, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "requests": self.requests,
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "logins": self.logins,
            "ambiguous": self.ambiguous,
            "retry_budget_left": self.retry_budget_left,
            "outage_waits": self.outage_waits,
        }


#: How far apart the two clocks may be before a run says so.
SKEW_WARNING = 60.0


class ServerClock:
    """The latest ``Date`` an answer carried, and the local clocks when it arrived."""

    __slots__ = ("_header", "_monotonic", "_offset", "_server")

    def __init__(self) -> None:
        self._header: str | None = None
        self._server: float | None = None
        self._monotonic = 0.0
        self._offset: float | None = None

    def observe(self, header: str | None) -> None:
        """Note the ``Date`` header of an answer that just arrived (unreadable ones ignored)."""
        if not header:
            return
        if header == self._header:  # one parse a second at most: the header's resolution
            return
        try:
            server = parsedate_to_datetime(header).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        self._header, self._server, self._monotonic = header, server, time.monotonic()
        # the header is truncated to the second: its midpoint is the better estimate
        self._offset = server + 0.5 - time.time()

    def now(self) -> float | None:
        """The server's time now (a lower bound, to the second), or None before any answer
        carried a ``Date``."""
        if self._server is None:
            return None
        return self._server + (time.monotonic() - self._monotonic)

    @property
    def offset(self) -> float | None:
        """Seconds the server's clock is ahead of ours (negative: behind); None when unknown."""
        return self._offset

    def skew_warning(self) -> str | None:
        """A sentence when the two clocks differ by more than a minute, else None."""
        offset = self._offset
        if offset is None or abs(offset) <= SKEW_WARNING:
            return None
        way = "behind" if offset > 0 else "ahead of"
        return (f"warning: this computer's clock is {abs(offset) / 60:.1f} minutes {way} the "
                "server's; emg-batch goes by the server's clock to recognise its cases")


class RetryBudget:
    """A run-wide bucket of retry tokens (AWS retry quota).

    A retry costs ``retry_cost`` tokens (``timeout_cost`` after a timeout, which is the most
    expensive failure for a server); each success refunds ``success_refund`` up to the
    capacity. When a retry cannot be paid for, the caller gives up at once.
    """

    __slots__ = ("_left", "capacity", "retry_cost", "success_refund", "timeout_cost")

    def __init__(
        self,
        *,
        capacity: int = 500,
        retry_cost: int = 5,
        timeout_cost: int = 10,
        success_refund: int = 1,
    ) -> None:
        if capacity < 0 or retry_cost < 0 or timeout_cost < 0 or success_refund < 0:
            raise ValueError("retry budget amounts must not be negative")
        self.capacity = capacity
        self.retry_cost = retry_cost
        self.timeout_cost = timeout_cost
        self.success_refund = success_refund
        self._left = capacity

    @property
    def left(self) -> int:
        """Tokens left in the bucket."""
        return self._left

    def try_spend(self, *, timeout: bool = False) -> bool:
        """Pay for one retry; False (and nothing spent) when the bucket cannot pay."""
        cost = self.timeout_cost if timeout else self.retry_cost
        if cost > self._left:
            return False
        self._left -= cost
        return True

    def refund(self) -> None:
        """Credit one success."""
        self._left = min(self.capacity, self._left + self.success_refund)

    def __repr__(self) -> str:
        return f"RetryBudget(left={self._left}, capacity={self.capacity})"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How transient failures are retried.

    ``attempts`` counts every try, the first one included. ``retry_after_max`` caps how long a
    server's ``Retry-After`` may hold the client. ``outage_max`` bounds how long one request
    waits out a server that answered before and is now down (see ``batch.api.pipeline``).
    ``testing`` switches every wait off (backoff, ``Retry-After`` and outage pauses) while
    keeping the same attempt counts, so tests run fast and still exercise the retry paths.
    """

    attempts: int = 6
    wait_initial: float = 0.2
    wait_max: float = 30.0
    wait_exp_base: float = 2.0
    retry_after_max: float = 120.0
    outage_max: float = 300.0
    budget: RetryBudget = field(default_factory=RetryBudget)
    testing: bool = False

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.wait_initial < 0 or self.wait_max < 0 or self.retry_after_max < 0:
            raise ValueError("waits must not be negative")

    @classmethod
    def for_testing(cls, *, attempts: int = 6, budget: RetryBudget | None = None) -> RetryPolicy:
        """A policy with the same attempt counts and no waiting at all."""
        return cls(
            attempts=attempts,
            wait_initial=0.0,
            wait_max=0.0,
            retry_after_max=0.0,
            budget=budget if budget is not None else RetryBudget(),
            testing=True,
        )

    def backoff(self, retry: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number *retry* (0 for the first retry); full jitter."""
        if self.testing:
            return 0.0
        ceiling = min(self.wait_max, self.wait_initial * self.wait_exp_base ** max(retry, 0))
        return (rng or random).uniform(0.0, ceiling)

    def retry_after(self, seconds: float | None) -> float:
        """The pause to honour for a server's ``Retry-After`` of *seconds*, capped."""
        if self.testing or seconds is None:
            return 0.0
        return min(max(seconds, 0.0), self.retry_after_max)


log = logging.getLogger(__name__)


class Outage:
    """Holds every request while a server that has answered before looks down.

    After ``threshold`` outage failures in a row (503/502/504 or a refused connection), every
    request waits on the limiter for a pause that doubles from ``first`` up to ``longest``
    seconds; then the waiting requests probe again. Failures of requests sent before a pause
    began belong to it and do not count again. A server that never answered (a wrong host)
    is not held: its requests fail after the normal retries.
    """

    def __init__(self, limiter: Limiter, *, enabled: bool, threshold: int = 3,
                 first: float = 1.0, longest: float = 4.0) -> None:
        self._limiter = limiter
        self._enabled = enabled
        self.threshold = threshold
        self.first = first
        self.longest = longest
        self._seen_success = False
        self._streak = 0
        self._pause = 0.0
        self._until = 0.0
        self.pauses = 0

    def hold(self, err: TransientError) -> bool:
        """Record an outage failure; True when the request should wait out the outage."""
        down = isinstance(err, ConnectError) or (
            isinstance(err, ServerError) and err.status in (502, 503, 504))
        if not (self._enabled and self._seen_success and down):
            return False
        now = time.monotonic()
        if now < self._until:
            return True
        self._streak += 1
        if self._streak < self.threshold:
            return False
        self._pause = min(self.longest, self._pause * 2 if self._pause else self.first)
        self._until = now + self._pause
        self._limiter.pause_until(self._until)
        self.pauses += 1
        log.warning("server unavailable: holding every request for %.0f s", self._pause)
        return True

    def success(self) -> None:
        """An answer: the server is up."""
        self._seen_success = True
        self._streak = 0
        self._pause = 0.0


T = TypeVar("T")
Reader = Callable[[aiohttp.ClientResponse], Awaitable[T]]
_URL_CACHE = 256


def version() -> str:
    """This package's version, for the User-Agent."""
    try:
        return metadata.version("emg-batch")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0"


def dumps(body: Any) -> bytes:
    """Compact UTF-8 JSON, as the official CLI's ``JSON.stringify`` sends it."""
    try:
        return orjson.dumps(body)
    except TypeError:  # orjson refuses integers past 64 bits; the standard encoder does not
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def decode(raw: bytes | bytearray, *, method: str, path: str) -> Any:
    """Strict JSON bytes to Python values; ValueError when they are not strict JSON. A seam on
    purpose: ``tests/test_provenance.py`` wraps it to record every answer field the client reads.

    orjson is strict on purpose, with no lenient fallback: NaN and Infinity, invalid UTF-8 (a
    name read with U+FFFD in it would be requested and written to disk as another name) and
    nesting past 1024 levels are refused, where the standard decoder accepts the first two
    and overflows the stack on the last.
    """
    return orjson.loads(raw)


async def read_json(resp: aiohttp.ClientResponse) -> Any:
    """The answer's JSON (``{}`` for an empty body), read within the client's limit
    (BodyTooLarge past it); PermanentError when it is not strict JSON."""
    raw = await read_capped(resp)
    if not raw.strip():
        return {}
    try:
        return decode(raw, method=resp.method, path=resp.url.path)
    except ValueError as exc:
        raise PermanentError(
            f"the server answered HTTP {resp.status} with a body that is not strict JSON "
            f"({exc}; NaN, Infinity, invalid UTF-8 and nesting deeper than 1024 levels are "
            "refused)",
            status=resp.status,
            method=resp.method,
            path=resp.url.path,
        ) from None


async def read_token(resp: aiohttp.ClientResponse) -> Secret:
    """The token of a login answer (see ``auth.token_of``)."""
    return token_of(await read_json(resp), status=resp.status)


@dataclass(slots=True)
class _Request:
    """One logical request, as every attempt of it sends it."""

    method: str
    path: str
    url: URL
    data: bytes | None
    unsafe: bool
    auth: bool
    stream: bool


@dataclass(frozen=True, slots=True)
class _Next:
    """A same-origin redirect to follow (see ``batch.api.http``)."""

    url: URL


class PipelineOptions(TypedDict, total=False):
    """How a client sends its requests (the keyword arguments of ``Client`` and ``Pipeline``).

    *timeout* bounds one request attempt, from the start of sending to the last byte of the
    answer. *max_body_mb* caps a JSON answer (default ``EMG_MAX_BODY_MB``, else 64) and
    *max_report_mb* a report download (default ``EMG_MAX_REPORT_MB``, else 2048).
    """

    rate: float | None
    concurrency: int
    retry: RetryPolicy | None
    timeout: float
    user_agent: str | None
    max_body_mb: float | None
    max_report_mb: float | None


class Pipeline:
    """One session to one host: sends requests through the limiter, retries and re-logins."""

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials,
        rate: float | None = None,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        user_agent: str | None = None,
        max_body_mb: float | None = None,
        max_report_mb: float | None = None,
    ) -> None:
        if rate is not None and rate <= 0:
            raise UsageError(f"--rate must be positive, got {rate}")
        if concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1, got {concurrency}")
        self.host = normalise_host(host)
        self._base = URL(self.host)
        self._tls_hint = tls_hint(host, self.host)
        self.limits = BodyLimits.choose(body_mb=max_body_mb, report_mb=max_report_mb)
        self.auth = Auth(credentials, self._login, host=self.host)
        self.retry = retry or RetryPolicy()
        self.limiter: Limiter = (FixedRateLimiter(rate) if rate is not None else
                                 AdaptiveLimiter(max_pause=self.retry.retry_after(math.inf)))
        self._outage = Outage(self.limiter, enabled=not self.retry.testing)
        self._concurrency = concurrency
        self._timeout = timeout
        connect = min(timeout / 2, 30.0)
        # aiohttp's own: connecting (plain requests), and stalls of a streamed answer, whose
        # deadline moves on as data comes; the whole attempt is bounded in ``_exchange``
        self._timeouts = (aiohttp.ClientTimeout(total=None, sock_connect=connect),
                          aiohttp.ClientTimeout(total=None, sock_connect=connect,
                                                sock_read=timeout))
        self._user_agent = user_agent or f"emg-batch/{version()}"
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[tuple[str, tuple[tuple[str, str], ...]], URL] = {}
        self.stats = ClientStats(retry_budget_left=self.retry.budget.left)
        self.clock = ServerClock()

    # ------------------------------------------------------------------ session lifecycle

    async def open(self) -> None:
        """Open the session (one bounded connection pool, TLS checks, no redirects).

        The whole attempt is bounded in ``_exchange``; connecting gets at most half of it, so
        a request that never left is told apart from one that got no answer in time.
        """
        timeout = self._timeouts[False]
        connector = aiohttp.TCPConnector(limit=self._concurrency * 2)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            # The API authenticates with a bearer token; filtering cookies for every request
            # would cost time and carry no state the API uses.
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={
                "Accept": "application/json",
                "Accept-Language": "en-US",
                "User-Agent": self._user_agent,
            },
            raise_for_status=False,
        )

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the client inside 'async with Client(...)'")
        return self._session

    async def _login(self, credentials: Credentials) -> Secret:
        body = {"username": credentials.username, "password": credentials.password}
        token = await self.call("POST", LOGIN_PATH, body=body, auth=False, reader=read_token)
        self.stats.logins += 1
        return token

    # ------------------------------------------------------------------ the loop

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        unsafe: bool = False,
        auth: bool = True,
        reader: Reader[T] = read_json,
        stream: bool = False,
    ) -> T:
        """Send one logical request with re-login and retries; return what *reader* makes of it.

        *stream*: the answer is streamed (a download): each stall may last ``timeout``, and
        the deadline moves on as data comes (``http.stream_to``).
        """
        request = _Request(method, path, self._url(path, params),
                           dumps(body) if body is not None else None, unsafe, auth, stream)
        retries = 0
        server_500s = 0
        relogins = 0
        outage_since = 0.0
        while True:
            try:
                result = await self._attempt(request, reader)
            except TokenRefused as refused:
                forbidden = self.auth.forbidden(refused, relogins)
                if forbidden is not None:
                    raise forbidden from None
                if not self.auth.may_relogin(refused.generation, relogins):
                    raise refused.public() from None
                relogins += 1
                await self.auth.refresh(refused.generation)
                continue
            except AmbiguousCreate:
                self.stats.ambiguous += 1
                raise
            except PermanentError:
                self.limiter.on_success()  # answered without throttling: the rate is fine
                raise
            except TransientError as err:
                if self._outage.hold(err):
                    # the server is down for everyone: wait with the whole pool instead of
                    # spending this request's attempts and the run's retry budget
                    outage_since = outage_since or time.monotonic()
                    if time.monotonic() - outage_since <= self.retry.outage_max:
                        self.stats.outage_waits += 1
                        continue
                if isinstance(err, ServerError) and err.status == 500:
                    server_500s += 1
                retries += 1
                if not self._may_retry(err, retries, server_500s):
                    raise RetriesExhausted(err) from None
                self.stats.retries += 1
                self._sync_budget()
                await self._wait_before_retry(err, retries - 1)
                continue
            self.retry.budget.refund()
            self._sync_budget()
            self.limiter.on_success()
            self._outage.success()
            return result

    def _may_retry(self, err: TransientError, retries: int, server_500s: int) -> bool:
        if retries >= self.retry.attempts or server_500s > 1:
            return False
        return self.retry.budget.try_spend(timeout=isinstance(err, RequestTimeout))

    def _sync_budget(self) -> None:
        self.stats.retry_budget_left = self.retry.budget.left

    async def _wait_before_retry(self, err: TransientError, retry: int) -> None:
        if isinstance(err, RateLimited) and err.retry_after is not None:
            return  # the shared Retry-After pause already holds this request
        delay = self.retry.backoff(retry)
        if delay > 0:
            await asyncio.sleep(delay)

    def _url(self, path: str, params: Sequence[tuple[str, str]] | None) -> URL:
        """The request URL, as aiohttp would build it. The ones that repeat (every create's)
        are parsed and query-encoded once: at full speed that is a noticeable share of a
        request's CPU."""
        key = (path, tuple(params) if params else ())
        url = self._urls.get(key)
        if url is None:
            url = URL(self.host + path)
            if params:
                url = url.extend_query(params)
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            self._urls[key] = url
        return url

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, request: _Request, reader: Reader[T]) -> T:
        """One attempt, following same-origin GET redirects (each hop is a request)."""
        url, hops = request.url, 0
        while True:
            outcome = await self._exchange(request, url, hops, reader)
            if not isinstance(outcome, _Next):
                return outcome
            url, hops = outcome.url, hops + 1

    async def _headers(self, request: _Request) -> dict[str, str]:
        """The headers of one request; checked after the limiter's wait, so a token about
        to expire is renewed before it goes out."""
        headers = {}
        if request.auth:
            await self.auth.ensure()
            headers = self.auth.headers()
        if request.data is not None:
            headers["Content-Type"] = "application/json"
        return headers

    async def _exchange(self, request: _Request, url: URL, hops: int,
                        reader: Reader[T]) -> T | _Next:
        """Send once and read the answer, all within one deadline."""
        session = self._open_session()
        sent_at = await self.limiter.acquire()
        headers = await self._headers(request)
        # A login may have gone first: the limiter learns from when this request really left.
        sent_at = max(sent_at, time.monotonic())
        generation = self.auth.generation  # the token this request carries
        attempt = Attempt(request.method, request.path, self.limits)
        self.stats.requests += 1
        timeout = self._timeouts[request.stream]
        current = begin(attempt)
        try:
            async with asyncio.timeout(self._timeout) as deadline:
                attempt.deadline = deadline
                async with session.request(request.method, url, data=request.data,
                                           headers=headers, allow_redirects=False,
                                           timeout=timeout) as resp:
                    self.limiter.on_answer(sent_at, resp.status, resp.headers)
                    self.clock.observe(resp.headers.get("Date"))
                    self.stats.count_response(resp.status)
                    log.debug("%s %s -> %s", request.method, request.path, resp.status)
                    if is_redirect(resp.status):
                        return _Next(self._redirect(request, url, hops, resp))
                    return await self._read(request, resp, generation, sent_at, reader)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("%s %s failed: %s", request.method, request.path, type(exc).__name__)
            raise transport_error(exc, method=request.method, path=request.path,
                                  unsafe=request.unsafe, hint=self._tls_hint) from None
        finally:
            end(current)

    def _redirect(self, request: _Request, url: URL, hops: int,
                  resp: aiohttp.ClientResponse) -> URL:
        return follow(self._base, url, method=request.method, status=resp.status,
                      location=resp.headers.get("Location"), hops=hops, redact=self.auth.redact)

    async def _read(self, request: _Request, resp: aiohttp.ClientResponse, generation: int,
                    sent_at: float, reader: Reader[T]) -> T:
        """What *reader* makes of a 2xx answer; the error of any other."""
        method, path = request.method, request.path
        if request.auth and resp.status in (401, 403):
            raise TokenRefused(self._message(resp.status, await read_error(resp)), generation,
                               status=resp.status, method=method, path=path)
        if request.auth:
            self.auth.accepted(generation)
        if resp.status >= 400:
            text = await read_error(resp)
            raise self._answer_error(resp, text, path=path, unsafe=request.unsafe,
                                     sent_at=sent_at)
        return await reader(resp)

    def _answer_error(self, resp: aiohttp.ClientResponse, text: str, *, path: str,
                      unsafe: bool, sent_at: float) -> ApiError:
        """The error for an HTTP error answer; a 429 or 503 may pause every request."""
        status = resp.status
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            self._honour_retry_after(retry_after)
        if status == 429:
            self.stats.rate_limited += 1
            self.limiter.on_throttle(sent_at)
        return status_error(status, self._message(status, text), method=resp.method,
                            path=path, unsafe=unsafe, retry_after=retry_after)

    def _message(self, status: int, text: str) -> str:
        """The message of an error answer, without any secret the server echoed."""
        return server_message(status, text, self.auth.redact)

    def _honour_retry_after(self, seconds: float | None) -> None:
        pause = self.retry.retry_after(seconds)
        if pause > 0:
            self.limiter.pause_until(time.monotonic() + pause)

    def pause_all(self, seconds: float) -> None:
        """Hold every request of this client for *seconds* from now."""
        self.limiter.pause_until(time.monotonic() + max(0.0, seconds))
