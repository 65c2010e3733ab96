"""The async Emedgene client: the one place that talks HTTP to Emedgene.

One ``aiohttp.ClientSession`` per run, a bounded connection pool, per-request timeouts and
TLS verification. Every request (look-ups, retries and logins included) passes through one
shared rate limiter. Transient failures are retried with capped, fully jittered backoff under
a run-wide retry budget; a create whose outcome is unknown is never re-sent and surfaces as
:class:`~batch.errors.AmbiguousCreate` so the runner can reconcile it.

Foreign (aiohttp) exceptions are translated into the :mod:`batch.errors` tree in exactly one
place, :func:`_transport_error`; HTTP error answers in :meth:`Client._status_error`.
Tokens and passwords never reach logs, exceptions or reprs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import anyio
import orjson
from yarl import URL

from batch.errors import (
    AmbiguousCreate,
    ApiError,
    AuthError,
    ConnectError,
    NotFound,
    PermanentError,
    RateLimited,
    RequestTimeout,
    RetriesExhausted,
    ServerError,
    TransientError,
    UsageError,
)
from batch.limiter import AdaptiveLimiter, FixedRateLimiter, Limiter
from batch.net import is_loopback
from batch.payload import ResolveError
from batch.retry import RetryPolicy

__all__ = ["ApiResolver", "Client", "ClientStats", "CreateResult", "Credentials"]

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

LOGIN_PATH = "/api/auth/v2/api_login/"
MAX_RELOGINS = 3  # shared re-logins one request may wait for before giving up
CREATE_PATH = "/api/cases/v2/cases"
_FS_PAGE = 100
_URL_CACHE = 256


def _version() -> str:
    try:
        return metadata.version("emg-batch")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0"


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True, slots=True)
class Credentials:
    """How the client authenticates: a username and password, a ready token, or both.

    With a password the client can log in again when the token expires; with a bare token
    it cannot. Secrets are kept out of ``repr``.
    """

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Credentials:
        """Read ``EMG_TOKEN``, or ``EMG_USERNAME`` with ``EMG_PASSWORD``, from *env*."""
        token = _strip_bearer(env.get("EMG_TOKEN", ""))
        username = env.get("EMG_USERNAME", "").strip() or None
        password = env.get("EMG_PASSWORD", "") or None
        if username and not password and not token:
            raise UsageError(
                "EMG_USERNAME is set but EMG_PASSWORD is not: set EMG_PASSWORD (never pass a "
                "password on the command line), or set EMG_TOKEN instead"
            )
        if not token and not (username and password):
            raise UsageError(
                "no Emedgene credentials: set EMG_TOKEN, or EMG_USERNAME and EMG_PASSWORD"
            )
        return cls(username=username, password=password if username else None, token=token or None)

    @property
    def can_login(self) -> bool:
        """True when a (re-)login is possible."""
        return bool(self.username and self.password)


def _strip_bearer(token: str) -> str:
    token = token.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token


class _Secret:
    """A string that never shows itself in a repr or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


# --------------------------------------------------------------------------- results, stats


@dataclass(frozen=True, slots=True)
class CreateResult:
    """A case the server created: its name (``EMG…``) and the HTTP status (201)."""

    name: str
    status: int


class _Outage:
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


# --------------------------------------------------------------------------- helpers


def normalise_host(host: str) -> str:
    """Return the base URL for *host*: HTTPS, or HTTP on a loopback host only; no trailing /."""
    host = host.strip()
    if "://" not in host:
        host = "https://" + host
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


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


def _normalise_dir(path: str) -> str:
    return "/".join(part for part in path.split("/") if part)


def _transport_error(
    exc: BaseException, *, method: str, path: str, unsafe: bool
) -> ApiError | UsageError:
    """Translate an aiohttp or timeout exception: the one place foreign errors are mapped.

    *unsafe* requests (non-idempotent POSTs) are retried only when the server certainly did
    not act; anything that may have reached it becomes :class:`AmbiguousCreate`.
    """
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return UsageError(f"TLS verification failed for {path}: {type(exc).__name__}")
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


class _TokenRefused(Exception):
    """Internal: the server refused the token of one generation (401/403)."""

    def __init__(
        self, message: str, generation: int, *, status: int, method: str, path: str
    ) -> None:
        super().__init__(message)
        self.message = message
        self.generation = generation
        self.where: dict[str, Any] = {"status": status, "method": method, "path": path}

    def public(self) -> AuthError:
        """The error the caller sees."""
        return AuthError(self.message, **self.where)


class _Memo(Generic[K, V]):
    """A per-run cache that also remembers permanent failures; one fetch per key at a time."""

    def __init__(self) -> None:
        self._done: dict[K, V | PermanentError] = {}
        self._locks: dict[K, asyncio.Lock] = {}

    async def get(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        if key in self._done:  # answered before: no lock to take
            return self._hit(key)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            if key in self._done:
                return self._hit(key)
            try:
                value = await fetch()
            except PermanentError as err:
                self._done[key] = err
                raise
            self._done[key] = value
            return value

    def _hit(self, key: K) -> V:
        hit = self._done[key]
        if isinstance(hit, PermanentError):
            raise hit
        return hit


Reader = Callable[[aiohttp.ClientResponse], Awaitable[T]]


def dumps(body: Any) -> bytes:
    """Compact UTF-8 JSON, as the official CLI's ``JSON.stringify`` sends it."""
    try:
        return orjson.dumps(body)
    except TypeError:  # orjson refuses integers past 64 bits; the standard encoder does not
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


async def _read_json(resp: aiohttp.ClientResponse) -> Any:
    raw = await resp.read()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except ValueError:
        pass  # not strict UTF-8 JSON: let the lenient standard decoder have a go
    try:
        return json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        raise PermanentError(
            f"the server answered HTTP {resp.status} with a body that is not JSON",
            status=resp.status,
            method=resp.method,
            path=resp.url.path,
        ) from None


def _hits(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [h for h in data if isinstance(h, dict)]
    if isinstance(data, dict):
        hits = data.get("hits", [])
        return [h for h in hits if isinstance(h, dict)] if isinstance(hits, list) else []
    return []


# --------------------------------------------------------------------------- client


class Client:
    """An async Emedgene API client for one run; use as ``async with Client(...) as c``."""

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials,
        rate: float | None = None,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        user_agent: str = f"emg-batch/{_version()}",
    ) -> None:
        if not credentials.token and not credentials.can_login:
            raise UsageError("no Emedgene credentials: need a token, or a username and password")
        if rate is not None and rate <= 0:
            raise UsageError(f"--rate must be positive, got {rate}")
        if concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1, got {concurrency}")
        self.host = normalise_host(host)
        self._credentials = credentials
        self._retry = retry or RetryPolicy()
        self._limiter: Limiter = FixedRateLimiter(rate) if rate is not None else AdaptiveLimiter()
        self._outage = _Outage(self._limiter, enabled=not self._retry.testing)
        self._concurrency = concurrency
        self._timeout = timeout
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._token: _Secret | None = (
            _Secret(_strip_bearer(credentials.token)) if credentials.token else None
        )
        self._generation = 0
        self._accepted = -1  # the newest token generation the server has accepted
        self._login_lock = asyncio.Lock()
        self._refused: AuthError | None = None
        self._users: list[dict[str, Any]] | None = None
        self._users_lock = asyncio.Lock()
        self._storages: _Memo[int, dict[str, Any]] = _Memo()
        self._urls: dict[tuple[str, tuple[tuple[str, str], ...]], URL] = {}
        self._dirs: _Memo[tuple[int, str], list[dict[str, str]]] = _Memo()
        self.stats = ClientStats(retry_budget_left=self._retry.budget.left)

    def __repr__(self) -> str:
        return f"Client(host={self.host!r}, limiter={self._limiter!r})"

    @property
    def limiter(self) -> Limiter:
        """The shared rate limiter (read its ``rate`` for progress displays)."""
        return self._limiter

    # ------------------------------------------------------------------ session lifecycle

    async def __aenter__(self) -> Client:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=min(self._timeout, 30.0), sock_read=self._timeout
        )
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
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the client inside 'async with Client(...)'")
        return self._session

    # ------------------------------------------------------------------ authentication

    async def login(self) -> None:
        """Log in now with the username and password; with only a token, nothing to do."""
        if self._credentials.can_login:
            await self._refresh(self._generation, force=True)

    def _check_refused(self) -> None:
        """Once the server refused our credentials, every request stops the same way."""
        if self._refused is not None:
            first = self._refused
            raise AuthError(
                first.message, status=first.status, method=first.method, path=first.path
            )

    async def _ensure_token(self) -> int:
        self._check_refused()
        if self._token is None:
            await self._refresh(self._generation)
        return self._generation

    async def _refresh(self, seen: int, *, force: bool = False) -> None:
        """Single flight: the first caller logs in; the others reuse its token."""
        async with self._login_lock:
            self._check_refused()
            if not force and self._token is not None and self._generation != seen:
                return  # someone else logged in while we waited
            if not self._credentials.can_login:
                self._refused = AuthError(
                    "the server refused the token (EMG_TOKEN); it may have expired. Set "
                    "EMG_USERNAME and EMG_PASSWORD so emg-batch can log in again",
                    status=401,
                )
                raise self._refused
            try:
                self._token = await self._call(
                    "POST",
                    LOGIN_PATH,
                    body={
                        "username": self._credentials.username,
                        "password": self._credentials.password,
                    },
                    auth=False,
                    reader=self._read_token,
                )
            except AuthError as err:
                self._refused = AuthError(
                    f"login refused for {self._credentials.username}: {err.message}",
                    status=err.status,
                    method="POST",
                    path=LOGIN_PATH,
                )
                raise self._refused from None
            self._generation += 1
            self.stats.logins += 1
            log.info("logged in to %s as %s", self.host, self._credentials.username)

    @staticmethod
    async def _read_token(resp: aiohttp.ClientResponse) -> _Secret:
        data = await _read_json(resp)
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(
                "the login answer has no access_token", status=resp.status, path=LOGIN_PATH
            )
        return _Secret(token)

    def _auth_headers(self) -> dict[str, str]:
        if self._token is None:
            return {}
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    # ------------------------------------------------------------------ the request pipeline

    async def pause_all(self, seconds: float) -> None:
        """Hold every request of this client for *seconds* from now (returns at once)."""
        self._limiter.pause_until(time.monotonic() + max(0.0, seconds))

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        unsafe: bool = False,
        auth: bool = True,
        reader: Reader[T] = _read_json,
    ) -> T:
        """Send one logical request with re-login and retries; return what *reader* makes of it."""
        retries = 0
        server_500s = 0
        relogins = 0
        outage_since = 0.0
        while True:
            if auth:
                await self._ensure_token()
            try:
                result = await self._attempt(method, path, params, body, unsafe, auth, reader)
            except _TokenRefused as refused:
                if not self._may_relogin(refused.generation, relogins):
                    raise refused.public() from None
                relogins += 1
                await self._refresh(refused.generation)
                continue
            except AmbiguousCreate:
                self.stats.ambiguous += 1
                raise
            except PermanentError:
                self._limiter.on_success()  # answered without throttling: the rate is fine
                raise
            except TransientError as err:
                if self._outage.hold(err):
                    # the server is down for everyone: wait with the whole pool instead of
                    # spending this request's attempts and the run's retry budget
                    outage_since = outage_since or time.monotonic()
                    if time.monotonic() - outage_since <= self._retry.outage_max:
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
            self._retry.budget.refund()
            self._sync_budget()
            self._limiter.on_success()
            self._outage.success()
            return result

    def _may_relogin(self, generation: int, relogins: int) -> bool:
        """Whether a request refused with token *generation* may log in (again) and retry.

        The first refusal always may (single flight: concurrent refusals share one login).
        A token may also expire while a request queues behind the limiter, so later
        refusals may too, a few times, but only when the refused token had worked before or
        a newer one exists: a fresh token that the server refuses outright is final.
        """
        if relogins == 0:
            return True
        expired = self._accepted >= generation or self._generation > generation
        return expired and relogins < MAX_RELOGINS

    def _may_retry(self, err: TransientError, retries: int, server_500s: int) -> bool:
        if retries >= self._retry.attempts or server_500s > 1:
            return False
        return self._retry.budget.try_spend(timeout=isinstance(err, RequestTimeout))

    def _sync_budget(self) -> None:
        self.stats.retry_budget_left = self._retry.budget.left

    async def _wait_before_retry(self, err: TransientError, retry: int) -> None:
        if isinstance(err, RateLimited) and err.retry_after is not None:
            return  # the shared Retry-After pause already holds this request
        delay = self._retry.backoff(retry)
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

    async def _attempt(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]] | None,
        body: Any,
        unsafe: bool,
        auth: bool,
        reader: Reader[T],
    ) -> T:
        session = self._open_session()
        sent_at = await self._limiter.acquire()
        headers = self._auth_headers() if auth else {}
        data = None
        if body is not None:
            data = dumps(body)
            headers["Content-Type"] = "application/json"
        generation = self._generation  # the token this request carries
        self.stats.requests += 1
        try:
            async with session.request(
                method, self._url(path, params), data=data, headers=headers
            ) as resp:
                self._limiter.on_answer(sent_at)
                self.stats.count_response(resp.status)
                log.debug("%s %s -> %s", method, path, resp.status)
                if auth and resp.status in (401, 403):
                    text = await resp.text(errors="replace")
                    raise _TokenRefused(
                        server_message(resp.status, text),
                        generation,
                        status=resp.status,
                        method=method,
                        path=path,
                    )
                if auth:
                    self._accepted = max(self._accepted, generation)
                if resp.status >= 400:
                    text = await resp.text(errors="replace")
                    raise self._status_error(resp, text, path=path, unsafe=unsafe, sent_at=sent_at)
                return await reader(resp)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("%s %s failed: %s", method, path, type(exc).__name__)
            raise _transport_error(exc, method=method, path=path, unsafe=unsafe) from None

    def _status_error(
        self, resp: aiohttp.ClientResponse, text: str, *, path: str, unsafe: bool, sent_at: float
    ) -> ApiError:
        """Map an HTTP error answer to the exception the caller acts on."""
        status = resp.status
        where: dict[str, Any] = {"status": status, "method": resp.method, "path": path}
        message = server_message(status, text)
        if status in (401, 403):
            return AuthError(message, **where)
        if status == 404:
            return NotFound(message, **where)
        if status == 429:
            return self._throttled(resp, message, where, sent_at)
        if status == 408:
            return RequestTimeout(message, **where)
        if status in (500, 502, 503, 504):
            if status == 503:
                self._honour_retry_after(parse_retry_after(resp.headers.get("Retry-After")))
            if unsafe and status != 503:
                return AmbiguousCreate(f"outcome unknown after HTTP {status}: {message}", **where)
            return ServerError(message, **where)
        return PermanentError(message, **where)

    def _throttled(
        self, resp: aiohttp.ClientResponse, message: str, where: dict[str, Any], sent_at: float
    ) -> RateLimited:
        self.stats.rate_limited += 1
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        self._limiter.on_throttle(sent_at)
        self._honour_retry_after(retry_after)
        return RateLimited(message, retry_after=retry_after, **where)

    def _honour_retry_after(self, seconds: float | None) -> None:
        pause = self._retry.retry_after(seconds)
        if pause > 0:
            self._limiter.pause_until(time.monotonic() + pause)

    # ------------------------------------------------------------------ cases

    async def create_case(
        self, payload: Mapping[str, Any], *, dry_run: bool = False
    ) -> CreateResult | None:
        """Create a case (``dry_run=False``) or have the server validate it (None)."""
        params = [("dry_run", "true" if dry_run else "false")]

        async def read(resp: aiohttp.ClientResponse) -> tuple[int, Any]:
            try:
                return resp.status, await _read_json(resp)
            except PermanentError:
                if dry_run:
                    raise
                raise AmbiguousCreate(
                    f"created (HTTP {resp.status}) but the answer could not be read",
                    status=resp.status,
                    method="POST",
                    path=CREATE_PATH,
                ) from None

        status, data = await self._call(
            "POST", CREATE_PATH, params=params, body=dict(payload), unsafe=not dry_run, reader=read
        )
        if dry_run:
            return None
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name:
            self.stats.ambiguous += 1
            raise AmbiguousCreate(
                f"HTTP {status} without a case name", status=status, method="POST", path=CREATE_PATH
            )
        return CreateResult(name=name, status=status)

    async def get_case(self, case: str) -> dict[str, Any]:
        """The full case object (``GET /api/test/{case}/``)."""
        return _as_dict(await self._call("GET", f"/api/test/{_segment(case)}/"))

    async def case_info(self, case: str) -> dict[str, Any]:
        """Creation time, creator, last update, name and status of a case."""
        return _as_dict(await self._call("GET", f"/api/test/{_segment(case)}/info"))

    async def set_status(self, case: str, status: str) -> None:
        """Change a case's status (e.g. ``custom_status_1``, ``finalized``)."""
        await self._call("PUT", f"/api/test/{_segment(case)}", body={"status": status})

    async def list_cases(
        self, *, status: Sequence[str] = (), since: str | None = None, page_size: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """Every case with one of *status* whose status changed since *since*, all pages."""
        offset = 0
        while True:
            params = [("status", s) for s in status]
            if since:
                params.append(("from_status_change_date", since))
            params += [("from", str(offset)), ("size", str(page_size))]
            data: Any = await self._call("GET", "/api/test", params=params)
            hits = _hits(data)
            for hit in hits:
                yield hit
            offset += len(hits)
            total = data.get("total") if isinstance(data, dict) else None
            if len(hits) < page_size or (isinstance(total, int) and offset >= total):
                return

    async def candidates(self, case: str) -> list[dict[str, Any]]:
        """The case's tagged variants (the hits of ``GET /api/candidates/{case}``)."""
        return _hits(await self._call("GET", f"/api/candidates/{_segment(case)}"))

    async def download_report(
        self, case: str, report_type: str, report_id: str | int, dest: Path
    ) -> Path:
        """Stream a report to ``dest + ".part"``, then rename it to *dest*."""
        part = dest.with_name(dest.name + ".part")
        path = (
            f"/api/test/v2/{_segment(case)}/reports/{_segment(report_type)}/{_segment(report_id)}"
        )

        async def save(resp: aiohttp.ClientResponse) -> Path:
            async with await anyio.open_file(part, "wb") as out:
                async for chunk in resp.content.iter_chunked(1 << 16):
                    await out.write(chunk)
            await anyio.Path(part).replace(dest)
            return dest

        return await self._call("GET", path, reader=save)

    # ------------------------------------------------------------------ users and actions

    async def org_users(self) -> list[dict[str, Any]]:
        """The organisation's users, fetched once per client."""
        async with self._users_lock:
            if self._users is None:
                self._users = _hits(await self._call("GET", "/api/user/org_users/"))
            return self._users

    async def user_ids(self, emails: Sequence[str]) -> list[int]:
        """Map e-mails to user ids (case-insensitive); PermanentError names unknown ones."""
        by_email = {
            str(u.get("email", "")).strip().lower(): u.get("id") for u in await self.org_users()
        }
        unknown = [e for e in emails if not isinstance(by_email.get(e.strip().lower()), int)]
        if unknown:
            raise PermanentError(f"unknown user e-mail(s): {', '.join(unknown)}")
        return [int(by_email[e.strip().lower()]) for e in emails]  # type: ignore[arg-type]

    async def assign(self, case: str, user_ids: Sequence[int]) -> None:
        """Assign users to a case (idempotent)."""
        await self._call(
            "POST",
            f"/api/participant/{_segment(case)}",
            body={"action": "assign", "ids": list(user_ids)},
        )

    async def create_preset_group(
        self, case: str, *, name: str, gene_lists: Sequence[tuple[int, str]]
    ) -> dict[str, Any]:
        """Add a custom preset group of gene lists to a case (not idempotent)."""
        search = [
            {"id": gid, "name": gname, "type": "gene list", "value": gname}
            for gid, gname in gene_lists
        ]
        data: Any = await self._call(
            "POST",
            f"/api/test/{_segment(case)}/preset_group",
            body={"name": name, "filter": {"search": search}},
            unsafe=True,
        )
        return _as_dict(data)

    # ------------------------------------------------------------------ samples and storage

    async def find_samples(
        self, name: str, *, sample_type: str = "fastq", exact: bool = True
    ) -> list[dict[str, Any]]:
        """Samples named *name*; a hit's ``note`` is the case it belongs to."""
        params = [("query", name), ("sampleType", sample_type)]
        if exact:
            params.append(("exact_match", "true"))
        return _hits(await self._call("GET", "/api/sample/", params=params))

    async def storage(self, storage_id: int) -> dict[str, Any]:
        """A storage provider's details (``scheme``…); cached, failures included."""

        async def fetch() -> dict[str, Any]:
            return _as_dict(await self._call("GET", f"/api/storage/{int(storage_id)}"))

        return await self._storages.get(int(storage_id), fetch)

    async def list_dir(self, storage_id: int, path: str) -> list[dict[str, str]]:
        """Every entry of a storage directory (all pages); cached per normalised path."""

        async def fetch() -> list[dict[str, str]]:
            entries: list[dict[str, str]] = []
            offset = 0
            while True:
                params = [("from", str(offset)), ("size", str(_FS_PAGE)), ("path", path)]
                data: Any = await self._call(
                    "GET", f"/api/storage/{int(storage_id)}/fs/list", params=params
                )
                resources = data.get("resources", []) if isinstance(data, dict) else []
                page = [
                    {str(k): str(v) for k, v in r.items() if v is not None}
                    for r in resources
                    if isinstance(r, dict)
                ]
                entries += page
                offset += _FS_PAGE
                if not (isinstance(data, dict) and data.get("has_more")) or not page:
                    return entries

        return await self._dirs.get((int(storage_id), _normalise_dir(path)), fetch)


def _as_dict(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {"value": data}


# --------------------------------------------------------------------------- resolver


class ApiResolver:
    """The payload builder's resolver (storage, directory listings, samples) over a Client.

    Permanent failures become ``batch.payload.ResolveError`` carrying the server's message,
    which the manifest layer reports against the row.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """Storage details, as the payload builder needs them."""
        try:
            return await self._client.storage(storage_id)
        except PermanentError as err:
            raise _resolve_error(err.message) from None

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """All entries of a storage directory."""
        try:
            return await self._client.list_dir(storage_id, path)
        except PermanentError as err:
            raise _resolve_error(err.message) from None

    async def find_sample(self, name: str) -> Mapping[str, Any] | None:
        """The first exact fastq sample named *name*, or None."""
        try:
            hits = await self._client.find_samples(name, sample_type="fastq", exact=True)
        except PermanentError as err:
            raise _resolve_error(err.message) from None
        for hit in hits:
            if str(hit.get("name", name)) == name:
                return hit
        return None


def _resolve_error(message: str) -> ResolveError:
    return ResolveError(message)
