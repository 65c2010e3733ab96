"""Configuration of the sandbox: one frozen dataclass, plus the default account."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_USER = "sandbox@example.com"
DEFAULT_PASSWORD = "sandbox"
DEFAULT_USER_ID = 1
DEFAULT_USER_NAME = "Sandbox User"
TENANT = "sandbox"
#: Seconds between ``iat`` and ``exp`` of the one real token seen (a legacy-login JWT).
DEFAULT_TOKEN_TTL = 3600.0
EXPIRED_STATUSES = (401, 403)


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxConfig:
    """How a sandbox behaves; every fault is off by default.

    * ``fixture``: a conformance-format fixture file (storages, samples, users, gene lists...).
    * ``rate_limit``: token bucket, requests per second per tenant (burst ``max(1, rate)``);
      an empty bucket answers 429 ``{"message": "Too many requests"}`` with ``Retry-After``.
    * ``rate_limit_headers``: with ``rate_limit``, every ``/api`` answer carries the bucket as
      rate-limit headers (``RateLimit-Policy``, ``RateLimit-*`` and ``X-RateLimit-*``); off by
      default, as Emedgene documents none.
    * ``latency_ms``: added to every ``/api`` request.
    * ``error_rate``: probability of a 500/502/503 on ``/api`` requests other than login,
      answered before any state changes.
    * ``drop_after_commit``: probability, on a real create, of storing the case and then
      closing the connection without an answer.
    * ``token_ttl``: seconds a token lives (3600, the lifetime of the one real token seen).
    * ``expired_status``: what an expired token answers, 403 (the legacy docs' word) or 401
      (real clients handle both).
    * ``advance_after``: seconds per automatic status step (0: delivered at once; None: never).
    * ``webhook``: URL that receives a JSON event on every status change.
    * ``record``: JSONL file, one line per request (method, path, query, body; never headers).
    * ``seed``: seeds every random choice the sandbox makes.
    * ``case_extras``: add ``reports`` and ``preset_groups`` to the case object. The real
      object has neither; they are an aid of this emulator only, off by default.
    * ``report_listing``: serve the inferred report listing ``GET /api/test/v2/{case}/reports``
      (off: 404, as a tenant without it would answer).
    """

    fixture: Path | None = None
    rate_limit: float | None = None
    rate_limit_headers: bool = False
    latency_ms: float = 0.0
    error_rate: float = 0.0
    drop_after_commit: float = 0.0
    token_ttl: float = DEFAULT_TOKEN_TTL
    expired_status: int = 403
    advance_after: float | None = None
    webhook: str | None = None
    record: Path | None = None
    seed: int = 0
    case_extras: bool = False
    report_listing: bool = True

    def __post_init__(self) -> None:
        if self.expired_status not in EXPIRED_STATUSES:
            raise ValueError("expired_status must be 401 or 403")


DEFAULT_CONFIG = SandboxConfig()
