"""Names that go into a request path (case names, report types and ids), checked first.

A segment is percent-encoded, but some values would still change the route or mean nothing:
``.`` and ``..`` (``GET /api/test/../`` is ``GET /api/``), an empty name, ``/`` or ``\\``
(servers and proxies that decode ``%2F`` see another route), and control or invisible
characters. Those are refused before anything is sent, with a ``PermanentError`` that is
recorded against the case or family, as any other refusal.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from batch.errors import PermanentError
from batch.text import quoted

SHOWN = 100  # characters of a refused name shown in a message
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_PLAIN = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9_.~-]*")  # unreserved: encoded as they are


def problem(name: str) -> str | None:
    """Why *name* cannot be a path segment, or None when it can."""
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return f"{name!r} would change the route"
    if "/" in name or "\\" in name:
        return "it contains a slash"
    bad = next((c for c in name if unicodedata.category(c) in _INVISIBLE), None)
    if bad is not None:
        return f"it contains the control character U+{ord(bad):04X}"
    return None


def shown(name: str) -> str:
    """*name* fit for a one-line message: quoted, escaped, cut short."""
    return quoted(name, SHOWN)


def check(name: str) -> str:
    """*name* itself when it can be a path segment; PermanentError naming it otherwise."""
    why = problem(name)
    if why is not None:
        raise PermanentError(f"refusing the name {shown(name)}: {why}; nothing was sent")
    return name


def segment(value: str | int) -> str:
    """*value* checked and percent-encoded as one path segment."""
    text = str(value)
    if _PLAIN.fullmatch(text):  # every Emedgene name: nothing to check or encode
        return text
    return quote(check(text), safe="")
