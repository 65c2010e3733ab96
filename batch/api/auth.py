"""Authentication: credentials, the bearer token and its lifetime, and logging in again once for
all (single flight).

What a bearer token says about its own lifetime.

Where the token is a JWT (the legacy login's Okta token, or a ready ``EMG_TOKEN``), its
``exp`` claim is read, without checking the signature: the server checks that, the client
only wants to log in again before the token runs out. Opaque tokens (the v2 login's) have
no known lifetime: the server's 401/403 is the only sign of expiry.

Who the client is: credentials, the token it carries, and logging in again, once for all.

One token at a time, with a generation number: requests remember the generation they carried,
so when many are refused at once (the token expired) exactly one re-login happens and the
others reuse its token (single flight). A token the server refuses outright after a fresh
login is final. Secrets never show in a repr, a log line or an exception.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from batch.api.http import Scrubber
from batch.errors import AuthError, Forbidden, PermanentError, UsageError
from batch.text import duration

MARGIN = 120.0  # seconds before expiry that a renewal is due, at most ...
SHARE = 0.1  # ... and at most this share of the token's lifetime
_MAX_TOKEN = 16 * 1024


@dataclass(frozen=True, slots=True)
class Lifetime:
    """When a token expires and when to renew it (epoch seconds; ``renew_at`` None when a
    login answered a token already expired: a clock far off, nothing to plan on)."""

    expires: float
    renew_at: float | None


def claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (``header.payload.signature``), or None for any other token."""
    parts = token.split(".")
    if len(token) > _MAX_TOKEN or len(parts) != 3 or not parts[1]:
        return None
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok and value == value else None


def lifetime(token: str, *, now: float, fresh: bool = True) -> Lifetime | None:
    """The lifetime of *token* received at *now*, or None when it does not say.

    A renewal is due ``min(MARGIN, SHARE * lifetime)`` before expiry (the lifetime from
    ``iat`` when given, else from *now*). A *fresh* token (a login's answer) is kept at least
    half the time it has left, so one that arrives nearly spent (a clock off) does not cause
    a login per request; a ready token (``EMG_TOKEN``) may be due at once.
    """
    found = claims(token)
    expires = _number(found.get("exp")) if found else None
    if found is None or expires is None:
        return None
    if expires <= now:  # a login's token already spent: a clock far off, nothing to plan on
        return Lifetime(expires, None if fresh else expires)
    issued = _number(found.get("iat"))
    span = expires - issued if issued is not None and issued < expires else expires - now
    renew_at = expires - min(MARGIN, SHARE * span)
    return Lifetime(expires, max(renew_at, now + (expires - now) / 2) if fresh else renew_at)


def strip_bearer(token: str) -> str:
    """The token without a leading ``Bearer `` (any case) and surrounding blanks."""
    token = token.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token


log = logging.getLogger(__name__)

LOGIN_PATH = "/api/auth/v2/api_login/"
MAX_RELOGINS = 3  # shared re-logins one request may wait for before giving up
#: Secrets configured in the environment, removed from every text a server sends (with the
#: password and every token this client held).
SECRET_ENVS = ("EMG_PASSWORD", "EMG_TOKEN", "EMG_WEBHOOK_TOKEN", "EMG_WEBHOOK_SECRET")
_KEPT_TOKENS = 8  # earlier tokens still scrubbed: a server may quote a token it refused


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
        token = strip_bearer(env.get("EMG_TOKEN", ""))
        if not header_safe(token):  # it goes into a header: aiohttp would refuse it mid-run
            raise UsageError(
                "EMG_TOKEN holds a line break, a space or another control character: set it to "
                "the token alone (e.g. export EMG_TOKEN=\"$(tr -d '\\r\\n' < token.txt)\")")
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


def header_safe(token: str) -> bool:
    """Whether *token* can go into an Authorization header: visible ASCII only."""
    return all("!" <= c <= "~" for c in token)


def token_of(answer: Any, *, status: int) -> Secret:
    """The token of a login *answer*: ``access_token`` (v2), or ``Authorization: "Bearer …"``
    (the legacy login's shape, which some tenants may answer)."""
    found = None
    if isinstance(answer, dict):
        found = answer.get("access_token") or answer.get("Authorization")
    token = strip_bearer(found) if isinstance(found, str) else ""
    if token and not header_safe(token):
        raise AuthError("the login answer's token holds characters a header cannot carry",
                        status=status, method="POST", path=LOGIN_PATH)
    if not token:
        raise AuthError("the login answer has no access_token", status=status, method="POST",
                        path=LOGIN_PATH)
    return Secret(token)


class Secret:
    """A string that never shows itself in a repr or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value itself, for the one header that carries it."""
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


class TokenRefused(Exception):
    """The server refused the token of one generation (401/403); internal to ``api``."""

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


Login = Callable[[Credentials], Awaitable[Secret]]


class Auth:
    """The token of one client, and the single-flight login that renews it.

    *login* sends the login request and answers the new token (it is the client's request
    pipeline, without authentication). Built with a bare token, the first login never happens.
    """

    def __init__(self, credentials: Credentials, login: Login, *, host: str) -> None:
        if not credentials.token and not credentials.can_login:
            raise UsageError("no Emedgene credentials: need a token, or a username and password")
        self._credentials = credentials
        self._login = login
        self._host = host
        self._token: Secret | None = None
        self._life: Lifetime | None = None
        self._configured = [os.environ.get(name) for name in SECRET_ENVS]
        self._held: list[str] = []
        self.scrub = Scrubber([credentials.password, credentials.token, *self._configured])
        if credentials.token:
            self._set(strip_bearer(credentials.token), fresh=False)
        self.generation = 0
        self._accepted = -1  # the newest token generation the server has accepted
        # asyncio's lock: the api layer runs on aiohttp, which is asyncio only
        self._lock = asyncio.Lock()
        self._refused: AuthError | None = None

    @property
    def can_login(self) -> bool:
        """Whether a (re-)login is possible."""
        return self._credentials.can_login

    @property
    def expires_at(self) -> float | None:
        """When the current token expires (epoch seconds), None when it does not say."""
        return self._life.expires if self._life is not None else None

    def _set(self, token: str, *, fresh: bool = True) -> None:
        self._token = Secret(token)
        self._life = lifetime(token, now=time.time(), fresh=fresh)
        self._held = [*self._held[-(_KEPT_TOKENS - 1):], token]
        credentials = self._credentials
        self.scrub = Scrubber([credentials.password, credentials.token, *self._configured,
                               *self._held])

    def _due(self) -> bool:
        """Whether the token is close enough to its end to log in again first."""
        renew_at = self._life.renew_at if self._life is not None else None
        return renew_at is not None and self.can_login and time.time() >= renew_at

    def expiry_warning(self) -> str | None:
        """What to tell a user whose ready token (no password) will run out, or None."""
        if self._life is None or self.can_login:
            return None
        left = self._life.expires - time.time()
        again = "set EMG_USERNAME and EMG_PASSWORD so emg-batch can log in again"
        span = duration(left, coarse=True)
        if left <= 0:
            return f"EMG_TOKEN expired {span} ago; {again}"
        return f"EMG_TOKEN expires in {span}; a longer run stops when it does; {again}"

    def redact(self, text: str) -> str:
        """*text* without the password, the tokens or any configured secret, in any form a
        server may echo them (for every text quoting server data)."""
        return self.scrub(text)

    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header of the current token (none before the first login)."""
        if self._token is None:
            return {}
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    def accepted(self, generation: int) -> None:
        """The server accepted the token of *generation*."""
        self._accepted = max(self._accepted, generation)

    def check_refused(self) -> None:
        """Once the server refused our credentials, every request stops the same way."""
        if self._refused is not None:
            first = self._refused
            raise AuthError(
                first.message, status=first.status, method=first.method, path=first.path
            )

    async def ensure(self) -> int:
        """Make sure a usable token is there (log in the first time, and again shortly before
        a token with a known expiry runs out); its generation."""
        self.check_refused()
        if self._token is None or self._due():
            await self.refresh(self.generation)
        return self.generation

    async def refresh(self, seen: int, *, force: bool = False) -> None:
        """Single flight: the first caller logs in; the others reuse its token."""
        async with self._lock:
            self.check_refused()
            if not force and self._token is not None and self.generation != seen:
                return  # someone else logged in while we waited
            if not self._credentials.can_login:
                self._refused = AuthError(
                    "the server refused the token (EMG_TOKEN); it may have expired. Set "
                    "EMG_USERNAME and EMG_PASSWORD so emg-batch can log in again",
                    status=401,
                )
                raise self._refused
            try:
                self._set((await self._login(self._credentials)).reveal())
            except (AuthError, PermanentError) as err:
                # any 4xx but 408 and 429 (retried as transient), a redirect refused, an
                # answer that is not JSON: the credentials or the host are wrong; stop once
                self._refused = AuthError(
                    f"login refused for {self._credentials.username}: {err.message}",
                    status=err.status,
                    method="POST",
                    path=LOGIN_PATH,
                )
                raise self._refused from None
            self.generation += 1
            log.info("logged in to %s as %s", self._host, self._credentials.username)

    def forbidden(self, refused: TokenRefused, relogins: int) -> Forbidden | None:
        """The error for a 403 that persists after a re-login, with the newest token, else None.

        A fresh token refused with 403 on one route is not expiry (a newer token would exist)
        nor a refused login (the login answered a token): the account lacks the role for the
        route (from v38, roles are IAM scopes). A 401 stays an authentication failure.
        """
        where = refused.where
        if where["status"] != 403 or relogins == 0 or refused.generation != self.generation:
            return None
        route = f"{where['method']} {where['path']}"
        account = " ".join(filter(None, ("the account", self._credentials.username)))
        return Forbidden(
            f"{account} lacks the role for {route}: HTTP "
            "403 to a freshly issued token (from Emedgene v38 roles are IAM scopes; ask the "
            f"tenant's administrator for this route's scope): {refused.message}", **where)

    def may_relogin(self, generation: int, relogins: int) -> bool:
        """Whether a request refused with token *generation* may log in (again) and retry.

        The first refusal always may (single flight: concurrent refusals share one login).
        A token may also expire while a request queues behind the limiter, so later
        refusals may too, a few times, but only when the refused token had worked before or
        a newer one exists: a fresh token that the server refuses outright is final.
        """
        if relogins == 0:
            return True
        expired = self._accepted >= generation or self.generation > generation
        return expired and relogins < MAX_RELOGINS
