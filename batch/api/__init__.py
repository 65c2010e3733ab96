"""The transport: everything that talks HTTP to Emedgene, and nothing else.

``client`` (endpoints, listings, the one cache of look-ups) over ``pipeline`` (the request
pipeline: retries, outage hold, counters, the server's clock), with ``auth`` (credentials,
login, token), ``limiter`` (request rate) and ``http`` (bounded bodies, redirects, path
segments, error translation, hosts). Nothing here imports the domain (manifests, payloads,
ledger, runs): data flows one way.
"""

from typing import TYPE_CHECKING

from batch.lazy import loader

if TYPE_CHECKING:
    from batch.api.auth import Credentials
    from batch.api.client import Client, CreateResult, LookupCache
    from batch.api.http import is_loopback, normalise_host, parse_retry_after, server_message
    from batch.api.limiter import AdaptiveLimiter, FixedRateLimiter, Limiter
    from batch.api.pipeline import ClientStats, RetryBudget, RetryPolicy

__all__ = [
    "AdaptiveLimiter",
    "Client",
    "ClientStats",
    "CreateResult",
    "Credentials",
    "FixedRateLimiter",
    "Limiter",
    "LookupCache",
    "RetryBudget",
    "RetryPolicy",
    "is_loopback",
    "normalise_host",
    "parse_retry_after",
    "server_message",
]

#: Where each public name lives: imported on first use, so that a command loads only the
#: modules it needs.
_HOMES = {
    "Credentials": "batch.api.auth",
    "Client": "batch.api.client",
    "CreateResult": "batch.api.client",
    "LookupCache": "batch.api.client",
    "AdaptiveLimiter": "batch.api.limiter",
    "FixedRateLimiter": "batch.api.limiter",
    "Limiter": "batch.api.limiter",
    "is_loopback": "batch.api.http",
    "normalise_host": "batch.api.http",
    "RetryBudget": "batch.api.pipeline",
    "RetryPolicy": "batch.api.pipeline",
    "ClientStats": "batch.api.pipeline",
    "parse_retry_after": "batch.api.http",
    "server_message": "batch.api.http",
}


__getattr__ = loader(__name__, _HOMES, globals())
