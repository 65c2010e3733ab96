"""What a bearer token says about its own lifetime.

Where the token is a JWT (the legacy login's Okta token, or a ready ``EMG_TOKEN``), its
``exp`` claim is read, without checking the signature: the server checks that, the client
only wants to log in again before the token runs out. Opaque tokens (the v2 login's) have
no known lifetime: the server's 401/403 is the only sign of expiry.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

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
