"""Addresses: which hosts are loopback (the only ones allowed plain HTTP or an open listener),
and the tenant base URL a client talks to."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from batch.errors import UsageError

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the usual names of localhost."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_host(host: str) -> str:
    """Return the base URL for *host*: HTTPS, or HTTP on a loopback host only; no trailing /."""
    host = host.strip()
    if "://" not in host:
        host = _with_https(host)
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


def _with_https(host: str) -> str:
    """*host* given without a scheme: https:// where only HTTPS is allowed; on loopback, where
    plain HTTP is allowed too, which one is meant cannot be guessed."""
    name = urlsplit("https://" + host).hostname
    if name is not None and is_loopback(name):
        raise UsageError(f"the host has no scheme: use https://{host} or, on loopback only, "
                         f"http://{host}")
    return "https://" + host


def tls_hint(given: str, base: str) -> str | None:
    """What to add to a TLS failure when the host *given* had no scheme (*base* is the URL it
    became): that https:// was assumed."""
    if "://" in given:
        return None
    return f"--host has no scheme, so {base} was assumed; check that the host serves HTTPS"
