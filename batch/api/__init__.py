"""The transport: everything that talks HTTP to Emedgene, and nothing else.

``client`` (endpoints) over ``call`` (the request pipeline), with ``auth`` (credentials, login,
token), ``limiter`` (request rate), ``retry`` (backoff and budget), ``outage`` (the breaker),
``translate`` (foreign errors and HTTP answers into ``batch.errors``), ``stats`` and ``net``.
Nothing here imports the domain (manifests, payloads, ledger, runs): data flows one way.
"""

from batch.api.auth import Credentials
from batch.api.client import Client, CreateResult
from batch.api.limiter import AdaptiveLimiter, FixedRateLimiter, Limiter
from batch.api.net import is_loopback, normalise_host
from batch.api.retry import RetryBudget, RetryPolicy
from batch.api.stats import ClientStats
from batch.api.translate import parse_retry_after, server_message

__all__ = [
    "AdaptiveLimiter",
    "Client",
    "ClientStats",
    "CreateResult",
    "Credentials",
    "FixedRateLimiter",
    "Limiter",
    "RetryBudget",
    "RetryPolicy",
    "is_loopback",
    "normalise_host",
    "parse_retry_after",
    "server_message",
]
