"""Webhook bodies: finding the case in a shape we can only guess, and what is kept of the rest.

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
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

__all__ = ["CASE_KEYS", "HookEvent", "Unread", "dedupe_key", "read_body"]

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
