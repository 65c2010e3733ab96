"""The listener's door: who may post, what a status event must look like, and the answers.

Emedgene's webhook headers and signing are not public, so authentication has to work with a
sender we do not control: the URL itself carries a secret token (``/hooks/<token>``, from
``EMG_WEBHOOK_TOKEN`` or generated at start), and when ``EMG_WEBHOOK_SECRET`` is set every
body must also carry our own HMAC-SHA256 signature, ``X-Emg-Signature: sha256=<hex>``. Both
are compared in constant time. Everything is checked before anything is recorded: wrong path
or token 404, wrong signature 401, not JSON content 415, a bad event 400.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from batch.errors import UsageError

__all__ = ["SIGNATURE_HEADER", "HookAuth", "HookEvent", "Refusal", "dedupe_key", "hook_app"]

log = logging.getLogger("batch.pull.listen")

TOKEN_ENV = "EMG_WEBHOOK_TOKEN"
SECRET_ENV = "EMG_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Emg-Signature"
EVENT_TYPE = "case_status_changed"
#: A status event is a few hundred bytes; 64 KB leaves room for a sender's additions.
MAX_BODY = 64 * 1024
FIELD_LIMIT = 100
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,256}")
_CASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_FIELDS = ("status", "previous_status", "status_change_date")


def dedupe_key(event: Mapping[str, Any]) -> str:
    """The identity of an event: case, new status and the time of the change."""
    return "|".join(str(event.get(k) or "") for k in ("case_name", "status",
                                                      "status_change_date"))


@dataclass(frozen=True, slots=True, kw_only=True)
class HookAuth:
    """The path token, and the shared secret for signatures when there is one."""

    token: str = field(repr=False)
    secret: bytes | None = field(default=None, repr=False)
    #: The token was made at start (it changes on every start).
    generated: bool = False

    def __post_init__(self) -> None:
        if not _TOKEN.fullmatch(self.token):
            raise UsageError(f"{TOKEN_ENV} must be 20 to 256 letters, digits, '-' or '_'")
        if self.secret is not None and len(self.secret) < 16:
            raise UsageError(f"{SECRET_ENV} must be at least 16 characters")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> HookAuth:
        """``EMG_WEBHOOK_TOKEN`` (or a new random token) and ``EMG_WEBHOOK_SECRET``."""
        token = env.get(TOKEN_ENV, "").strip()
        secret = env.get(SECRET_ENV, "")
        return cls(token=token or secrets.token_urlsafe(32), generated=not token,
                   secret=secret.encode() if secret else None)

    @property
    def path(self) -> str:
        """The one path that takes webhooks."""
        return f"/hooks/{self.token}"

    def sign(self, body: bytes) -> str:
        """The signature header value of *body* (what a sender computes)."""
        if self.secret is None:
            raise UsageError(f"no {SECRET_ENV}: nothing to sign with")
        return "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def token_matches(self, given: str) -> bool:
        """Constant-time comparison of a path token."""
        return hmac.compare_digest(given.encode(), self.token.encode())

    def signature_matches(self, body: bytes, given: str | None) -> bool:
        """Whether *given* signs *body* (always true without a secret)."""
        if self.secret is None:
            return True
        return given is not None and hmac.compare_digest(given.strip().encode(),
                                                         self.sign(body).encode())


@dataclass(frozen=True, slots=True)
class HookEvent:
    """The fields of a status event that the listener uses (nothing else is kept)."""

    case: str
    status: str | None
    previous_status: str | None
    status_change_date: str | None

    @property
    def key(self) -> str:
        """The dedupe key."""
        return dedupe_key(self.fields())

    def fields(self) -> dict[str, str | None]:
        """The event as the ledger stores it."""
        return {"case_name": self.case, "status": self.status,
                "previous_status": self.previous_status,
                "status_change_date": self.status_change_date}


class Refusal(Exception):
    """A request answered with an error; *reason* is what the counters call it."""

    def __init__(self, status: int, reason: str, message: str, *,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.retry_after = retry_after

    def response(self) -> web.Response:
        """The answer."""
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else None
        return web.json_response({"message": self.message}, status=self.status, headers=headers)


def parse_event(raw: bytes) -> HookEvent | None:
    """The event in *raw*; None for another kind of event (acknowledged, not recorded)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Refusal(400, "bad_event", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Refusal(400, "bad_event", "expected a JSON object")
    if data.get("event", EVENT_TYPE) != EVENT_TYPE:
        return None
    case = data.get("case_name")
    if not isinstance(case, str) or not _CASE.fullmatch(case.strip()):
        raise Refusal(400, "bad_event", "expected a JSON event with case_name (a case name, "
                      "letters, digits, '.', '-' or '_', at most 100)")
    values = [data.get(name) for name in _FIELDS]
    for name, value in zip(_FIELDS, values, strict=True):
        if value is not None and (not isinstance(value, str) or len(value) > FIELD_LIMIT):
            raise Refusal(400, "bad_event", f"{name} must be text of at most {FIELD_LIMIT} "
                          "characters")
    return HookEvent(case.strip(), *values)


Accept = Callable[[HookEvent], dict[str, Any]]


class _Door:
    """The request handler: checks in order, then hands the event to *accept*."""

    def __init__(self, auth: HookAuth, accept: Accept, refused: dict[str, int]) -> None:
        self.auth, self.accept, self.refused = auth, accept, refused

    async def receive(self, request: web.Request) -> web.Response:
        try:
            event = await self._event(request)
            if event is None:
                return web.json_response({"recorded": False, "ignored": True})
            return web.json_response(self.accept(event))
        except Refusal as refusal:
            self._count(refusal)
            return refusal.response()

    async def _event(self, request: web.Request) -> HookEvent | None:
        if not self.auth.token_matches(request.match_info["token"]):
            raise Refusal(404, "wrong_token", "not found")
        raw = await request.read()  # read (bounded, with a deadline) by batch.serving
        if not self.auth.signature_matches(raw, request.headers.get(SIGNATURE_HEADER)):
            raise Refusal(401, "bad_signature", f"missing or wrong {SIGNATURE_HEADER}")
        if request.content_type != "application/json":
            raise Refusal(415, "not_json", "Content-Type must be application/json")
        return parse_event(raw)

    async def old_path(self, request: web.Request) -> web.Response:
        refusal = Refusal(404, "old_path", "not found: webhooks go to the /hooks/<token> URL "
                          "the listener printed at start")
        self._count(refusal)
        return refusal.response()

    def _count(self, refusal: Refusal) -> None:
        seen = self.refused.get(refusal.reason, 0)
        self.refused[refusal.reason] = seen + 1
        if seen == 0:  # a flood of refusals must not flood the log: the first of each kind
            log.warning("refused a webhook (HTTP %d, %s): %s; further ones are only counted",
                        refusal.status, refusal.reason, refusal.message)


def hook_app(auth: HookAuth, accept: Accept, *, refused: dict[str, int]) -> web.Application:
    """The listener's application: ``POST /hooks/<token>``, nothing else.

    The old unauthenticated ``POST /`` and ``/webhook`` answer 404 with a pointer to the new
    URL. *refused* counts refusals by reason.
    """
    door = _Door(auth, accept, refused)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/hooks/{token}", door.receive)
    for old in ("/", "/webhook"):
        app.router.add_post(old, door.old_path)
    return app
