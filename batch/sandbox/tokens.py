"""The two kinds of token a tenant hands out.

The v2 login answers an opaque token (base64 of ``<tenant>,<uuid4>``, as in one published
sample); the legacy login answers a JWT (the one real token seen is an Okta access token whose
``iat`` and ``exp`` are 3600 s apart). The sandbox signs its JWTs with HS256 and a key of its
own: clients read the claims, they cannot check a tenant's signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import uuid
from typing import Any


def b64url(raw: bytes) -> str:
    """Base64url without padding, as JWTs write it."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def opaque(tenant: str, rng_bits: int, seed: str | None, serial: int) -> str:
    """A v2 token: base64 of ``<tenant>,<uuid4>``, or of ``<seed>.<serial>`` from a fixture."""
    if seed is not None:
        raw = f"{seed}.{serial}"  # unique per login, still recognisably the seed
    else:
        raw = f"{tenant},{uuid.UUID(int=rng_bits, version=4)}"
    return base64.b64encode(raw.encode()).decode()


def _numeric(value: float) -> int | float:
    """A NumericDate: whole seconds when the value is whole, else the fraction too."""
    return int(value) if float(value).is_integer() else round(value, 3)


def jwt(*, key: bytes, subject: str, user_id: int, issued: float, ttl: float,
        token_id: str) -> str:
    """A signed JWT with ``iat``, ``exp`` (never after the sandbox's own expiry) and ``sub``."""
    iat = math.floor(issued)
    claims: dict[str, Any] = {
        "ver": 1, "jti": token_id, "iss": "urn:emg-batch:sandbox", "aud": "api://sandbox",
        "iat": iat, "exp": _numeric(iat + ttl), "sub": subject, "uid": user_id,
    }
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "sandbox"},
                            separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = b64url(hmac.new(key, signing_input, hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"
