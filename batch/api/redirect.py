"""Redirects, decided by the client and not by aiohttp: the password and patient data go to
the configured host only.

A GET redirected to the same origin (scheme, host and port) is followed, a few hops at most;
anything else (another host or port, HTTPS to HTTP, a POST or PUT, a redirect without a
Location, too many hops) stops with :class:`RedirectRefused` naming the Location (without its
query, cut short). Nothing is sent to the Location in that case.
"""

from __future__ import annotations

from collections.abc import Callable

from yarl import URL

from batch.errors import RedirectRefused
from batch.text import quoted

MAX_HOPS = 3
SHOWN = 100  # characters of a Location shown in a message


def is_redirect(status: int) -> bool:
    """True for a 3xx answer (followed or refused, never read as a result)."""
    return 300 <= status < 400


def origin(url: URL) -> tuple[str, str, int | None]:
    """Scheme, host and port (the default port when none is written)."""
    return url.scheme.lower(), (url.host or "").lower(), url.port


def shown(location: URL | str, redact: Callable[[str], str] = str) -> str:
    """A Location fit for a message: no user, password, query or fragment; cut short."""
    if isinstance(location, URL):
        try:
            text = str(location.with_user(None).with_query(None).with_fragment(None))
        except ValueError:  # a relative URL has no user to drop
            text = str(location.with_query(None).with_fragment(None))
    else:
        text = location
    text = redact(text)
    return quoted(text, SHOWN)


def follow(
    base: URL,
    current: URL,
    *,
    method: str,
    status: int,
    location: str | None,
    hops: int,
    redact: Callable[[str], str] = str,
) -> URL:
    """Where to send *method* next after a *status* redirect of *current* to *location*.

    *base* is the configured host; *hops* the redirects followed so far. RedirectRefused
    unless the redirect may be followed.
    """
    where = {"status": status, "method": method, "path": current.path}
    if not location:
        raise RedirectRefused(f"the server answered HTTP {status} without a Location",
                              location="", **where)
    try:
        target = current.join(URL(location.strip()))
    except ValueError:
        refused = f"HTTP {status} to an unreadable Location {shown(location, redact)}"
        raise RedirectRefused(refused, location=location[:SHOWN], **where) from None
    reason = _refusal(base, target, method=method, hops=hops)
    if reason is not None:
        name = shown(target, redact)
        raise RedirectRefused(f"HTTP {status} redirects to {name}: not followed, {reason}",
                              location=name.strip("'\""), **where)
    return target


def _refusal(base: URL, target: URL, *, method: str, hops: int) -> str | None:
    """Why a redirect to *target* is not followed, or None when it may be."""
    if base.scheme == "https" and target.scheme != "https":
        return "it leaves HTTPS (check --host)"
    if origin(target) != origin(base):
        return f"it leads away from {base.host} (check --host; nothing was sent there)"
    if method != "GET":
        return f"a {method} is never re-sent to another address (check --host)"
    if hops >= MAX_HOPS:
        return f"more than {MAX_HOPS} redirects in a row"
    return None
