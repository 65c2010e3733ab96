"""The listener's door: what it accepts (the secret path, the signature, the answers) and how it
reads a webhook body.

Webhook bodies: finding the case in a shape we can only guess, and what is kept of the rest.

Emedgene's webhook payload is not public (only that it is about a case's status change), so
the listener does not insist on one shape. It looks for the case under ``case_name``,
``test_name``, ``case`` and ``name`` (in that order), at the top level first, then inside
each object one level down (``{"data": {"case_name": ...}}``, ``{"case": {"name": ...}}``);
a name that looks like an Emedgene case (``EMG`` and digits) wins over any other. The event's
type is not checked: any body that names a case is a hint that the case changed, and the case
is re-read anyway. Status fields are read from the same object when present and clipped, never
refused. A body sent as a form (``application/x-www-form-urlencoded``) is read from its
fields, or from a ``payload`` field holding JSON.

A body in which no case can be found is :class:`Unread`: the listener keeps it (bounded) and
catches up from the case listing instead, so a wrong guess costs a delay, never an event.

The listener's door: who may post, and the answers.

Emedgene's webhook headers and signing are not public, so authentication has to work with a
sender we do not control: the URL itself carries a secret token (``/hooks/<token>``, from
``EMG_WEBHOOK_TOKEN`` or generated at start). That is how Emedgene's sender is authenticated.
``EMG_WEBHOOK_SECRET`` is for a relay of the user's own that signs what it forwards: when it is
set, every body must also carry our HMAC-SHA256 signature, ``X-Emg-Signature: sha256=<hex>``,
which Emedgene's sender cannot compute. Both are compared in constant time.

The path and its token are decided on the request line alone, before any body is read (the
``screen`` given to ``batch.serving``): a wrong path or token gets 404 at once and its
connection is closed, so an unauthenticated peer cannot hold the listener by trickling a body.
Then a wrong signature gets 401. Every authenticated body is answered ``200``: one that names
a case becomes an event, any other is kept for the listener to catch up from (see above).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from batch.errors import UsageError
from batch.serving import Screen

__all__ = ["CASE_KEYS", "SIGNATURE_HEADER", "HookAuth", "HookEvent", "Refusal", "Unread",
           "dedupe_key", "hook_app", "read_body"]


#: Where a case's name may be, in order of preference.
CASE_KEYS = ("case_name", "test_name", "case", "name")
FIELD_LIMIT = 100
_CASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_EMEDGENE = re.compile(r"EMG[0-9]+", re.IGNORECASE)
_FIELDS = ("status", "previous_status", "status_change_date")
_FORM = "application/x-www-form-urlencoded"


def dedupe_key(event: Mapping[str, Any]) -> str:
    """The identity of an event: case, new status and the time of the change."""
    return "|".join(str(event.get(k) or "") for k in ("case_name", "status",
                                                      "status_change_date"))


@dataclass(frozen=True, slots=True)
class HookEvent:
    """The fields of a status event that the listener uses (nothing else is kept)."""

    case: str
    status: str | None = None
    previous_status: str | None = None
    status_change_date: str | None = None
    #: Set for a body without a change date: every delivery is then an event of its own (a
    #: repeat costs a re-read; folding two real changes into one would lose the second).
    nonce: str | None = None

    @property
    def key(self) -> str:
        """The dedupe key."""
        key = dedupe_key(self.fields())
        return key if self.nonce is None else f"{key}@{self.nonce}"

    def fields(self) -> dict[str, str | None]:
        """The event as the ledger stores it."""
        return {"case_name": self.case, "status": self.status,
                "previous_status": self.previous_status,
                "status_change_date": self.status_change_date}


@dataclass(frozen=True, slots=True)
class Unread:
    """An authenticated body in which no case could be found, and why."""

    reason: str


def read_body(raw: bytes, content_type: str) -> HookEvent | Unread:
    """The event in *raw*, or why none could be read."""
    data = _decode(raw, content_type)
    if isinstance(data, Unread):
        return data
    found = _find_case(data)
    if found is None:
        return Unread(f"no case name found (looked for {', '.join(CASE_KEYS)} at the top "
                      "level and one level down)")
    case, where = found
    status, previous, date = (_text(where.get(n, data.get(n))) for n in _FIELDS)
    return HookEvent(case, status, previous, date,
                     nonce=None if date else str(time.time_ns()))


def _decode(raw: bytes, content_type: str) -> dict[str, Any] | Unread:
    if content_type == _FORM:
        try:
            form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            return Unread("a form body that is not UTF-8")
        if "payload" not in form:
            return form
        raw = form["payload"].encode()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Unread("the body is not JSON")
    return data if isinstance(data, dict) else Unread("the body is not a JSON object")


def _find_case(data: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The case named in *data* and the object that names it (Emedgene-like names first)."""
    places = [data, *(v for v in data.values() if isinstance(v, dict))]
    found = [(value.strip(), place) for key in CASE_KEYS for place in places
             if isinstance(value := place.get(key), str) and _CASE.fullmatch(value.strip())]
    for name, place in found:
        if _EMEDGENE.fullmatch(name):
            return name, place
    return found[0] if found else None


def _text(value: Any) -> str | None:
    """A status field as text, clipped (a sender's odd value is kept short, not refused)."""
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)[:FIELD_LIMIT]


log = logging.getLogger("batch.pull.listen")

TOKEN_ENV = "EMG_WEBHOOK_TOKEN"
SECRET_ENV = "EMG_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Emg-Signature"
#: A status event is a few hundred bytes; 64 KB leaves room for a sender's additions.
MAX_BODY = 64 * 1024
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,256}")
_HOOKS = "/hooks/"


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


Accept = Callable[[HookEvent], dict[str, Any]]
#: Keeps a body that could not be read: the raw bytes, its content type, the header names,
#: and why.
Keep = Callable[[bytes, str, list[str], Unread], dict[str, Any]]


class _Door:
    """The request handler: checks in order, then hands the event to *accept* (or the body
    that names no case to *keep*)."""

    def __init__(self, auth: HookAuth, accept: Accept, keep: Keep,
                 refused: dict[str, int]) -> None:
        self.auth, self.accept, self.keep, self.refused = auth, accept, keep, refused

    def screen(self, request: web.Request) -> web.StreamResponse | None:
        """Decide on the request line alone: the token's path goes on, anything else 404."""
        path = request.path
        if path.startswith(_HOOKS) and self.auth.token_matches(path[len(_HOOKS):]):
            return None
        if path in ("/", "/webhook") and request.method == "POST":
            refusal = Refusal(404, "old_path", "not found: webhooks go to the /hooks/<token> "
                              "URL the listener printed at start")
        else:
            refusal = Refusal(404, "wrong_token", "not found")
        self._count(refusal)
        return refusal.response()

    async def receive(self, request: web.Request) -> web.Response:
        try:
            raw = await request.read()  # read (bounded, with a deadline) by batch.serving
            if not self.auth.signature_matches(raw, request.headers.get(SIGNATURE_HEADER)):
                raise Refusal(401, "bad_signature", f"missing or wrong {SIGNATURE_HEADER}")
            found = read_body(raw, request.content_type)
            if isinstance(found, Unread):
                return web.json_response(self.keep(raw, request.content_type,
                                                   sorted(set(request.headers)), found))
            return web.json_response(self.accept(found))
        except Refusal as refusal:
            self._count(refusal)
            return refusal.response()

    def _count(self, refusal: Refusal) -> None:
        seen = self.refused.get(refusal.reason, 0)
        self.refused[refusal.reason] = seen + 1
        if seen == 0:  # a flood of refusals must not flood the log: the first of each kind
            log.warning("refused a webhook (HTTP %d, %s): %s; further ones are only counted",
                        refusal.status, refusal.reason, refusal.message)


def hook_app(auth: HookAuth, accept: Accept, keep: Keep, *,
             refused: dict[str, int]) -> tuple[web.Application, Screen]:
    """The listener's application (``POST /hooks/<token>``, nothing else) and its screen,
    to give ``batch.serving.serve``.

    The old unauthenticated ``POST /`` and ``/webhook`` answer 404 with a pointer to the new
    URL. *refused* counts refusals by reason.
    """
    door = _Door(auth, accept, keep, refused)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/hooks/{token}", door.receive)
    return app, door.screen
