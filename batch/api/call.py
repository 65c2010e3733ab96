"""The request pipeline: one logical request in, its answer (or one ``batch.errors`` error) out.

Every request (look-ups, retries and logins included) waits on one shared rate limiter, carries
the current token, and on failure is retried with capped, fully jittered backoff under a
run-wide retry budget; 401/403 triggers one shared re-login; an outage holds every request
(``outage``). A non-idempotent request whose outcome is unknown is never re-sent.

Every attempt has one deadline, ``timeout`` seconds from the start of sending to the last byte
of the answer (a download's moves on while data keeps coming, see ``limits``); every body is
read within its limit (``body``); redirects are the pipeline's decision, never aiohttp's: only
a GET to the same origin is followed (``redirect``).

This layer is asyncio, not anyio: aiohttp, the transport, runs on asyncio only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

import aiohttp
import orjson
from yarl import URL

from batch.api.auth import LOGIN_PATH, Auth, Credentials, Secret, TokenRefused, token_of
from batch.api.body import Attempt, begin, end, read_capped, read_error
from batch.api.clock import ServerClock
from batch.api.limiter import AdaptiveLimiter, FixedRateLimiter, Limiter
from batch.api.limits import Limits
from batch.api.net import normalise_host, tls_hint
from batch.api.outage import Outage
from batch.api.redirect import follow, is_redirect
from batch.api.retry import RetryPolicy
from batch.api.stats import ClientStats
from batch.api.translate import parse_retry_after, server_message, status_error, transport_error
from batch.errors import (
    AmbiguousCreate,
    ApiError,
    PermanentError,
    RateLimited,
    RequestTimeout,
    RetriesExhausted,
    ServerError,
    TransientError,
    UsageError,
)

__all__ = ["Caller", "Reader", "dumps", "read_json", "version"]

log = logging.getLogger(__name__)

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
    """A same-origin redirect to follow (see ``batch.api.redirect``)."""

    url: URL


class Caller:
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
        limits: Limits | None = None,
    ) -> None:
        if rate is not None and rate <= 0:
            raise UsageError(f"--rate must be positive, got {rate}")
        if concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1, got {concurrency}")
        self.host = normalise_host(host)
        self._base = URL(self.host)
        self._tls_hint = tls_hint(host, self.host)
        self.limits = limits or Limits()
        self.auth = Auth(credentials, self._login, host=self.host)
        self.retry = retry or RetryPolicy()
        self.limiter: Limiter = FixedRateLimiter(rate) if rate is not None else AdaptiveLimiter()
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
        the deadline moves on as data comes (``body.stream_to``).
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
                    self.limiter.on_answer(sent_at)
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
