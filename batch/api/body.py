"""Reading answers within bounds: a JSON body up to its limit, an error to a few KB, a download
up to its own limit, each read incrementally so memory stays bounded whatever the server sends.

The pipeline (``call``) makes one :class:`Attempt` current (a context variable) while an
answer is read, so every reader, an endpoint's own included, honours the client's limits and
deadline without each endpoint passing them along.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import BinaryIO

import aiohttp

from batch.api.limits import BODY_ENV, REPORT_ENV, REPORT_MIN_RATE, Limits, megabytes
from batch.errors import BodyTooLarge

_CHUNK = 1 << 16


@dataclass(slots=True)
class Attempt:
    """One request attempt being answered: its route, its limits and its deadline."""

    method: str
    path: str
    limits: Limits
    deadline: asyncio.Timeout | None = None

    def extend(self, seconds: float) -> None:
        """Move the deadline *seconds* later (a download that keeps receiving data)."""
        when = self.deadline.when() if self.deadline is not None else None
        if when is not None and self.deadline is not None:
            self.deadline.reschedule(when + seconds)


_current: ContextVar[Attempt | None] = ContextVar("emg_batch_attempt", default=None)


def begin(attempt: Attempt) -> Token[Attempt | None]:
    """Make *attempt* the one whose answer is being read, until :func:`end`."""
    return _current.set(attempt)


def end(token: Token[Attempt | None]) -> None:
    """Back to the attempt (if any) current before :func:`begin`."""
    _current.reset(token)


def current(resp: aiohttp.ClientResponse) -> Attempt:
    """The attempt being answered (default limits outside the pipeline)."""
    found = _current.get()
    return found if found is not None else Attempt(resp.method, resp.url.path, Limits())


def _too_large(attempt: Attempt, limit: int, what: str, setting: str) -> BodyTooLarge:
    return BodyTooLarge(
        f"the {what} of {attempt.method} {attempt.path} is larger than the "
        f"{megabytes(limit)} limit and was not read further (raise it with {setting})",
        limit=limit, method=attempt.method, path=attempt.path)


async def read_capped(resp: aiohttp.ClientResponse) -> bytes | bytearray:
    """The whole body, at most the JSON limit; BodyTooLarge past it (the rest is not read)."""
    attempt = current(resp)
    limit = attempt.limits.body
    declared = resp.content_length
    if declared is not None and declared > limit:
        raise _too_large(attempt, limit, "answer", BODY_ENV)
    if declared is not None and resp.headers.get("Content-Encoding", "identity") == "identity":
        return await resp.read()  # exactly the declared length: bounded, and read at once
    body = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise _too_large(attempt, limit, "answer", BODY_ENV)
    return body


async def read_error(resp: aiohttp.ClientResponse) -> str:
    """The start of an error answer (a few KB: its message is all that is used)."""
    limit = current(resp).limits.error
    data = bytearray()
    while len(data) < limit:
        chunk = await resp.content.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", errors="replace")


async def stream_to(resp: aiohttp.ClientResponse, out: BinaryIO) -> int:
    """Write the body into *out*, at most the report limit; the number of bytes written.

    Each chunk moves the attempt's deadline on in proportion to its size, so a large report
    on a working connection completes while a trickle is still cut off.
    """
    attempt = current(resp)
    limit = attempt.limits.report
    if resp.content_length is not None and resp.content_length > limit:
        raise _too_large(attempt, limit, "report", REPORT_ENV)
    written = earned = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        written += len(chunk)
        if written > limit:
            raise _too_large(attempt, limit, "report", REPORT_ENV)
        out.write(chunk)  # 64 KB to the page cache: not worth a thread
        earned += len(chunk)
        if earned >= REPORT_MIN_RATE:  # a second's worth: move the deadline on by a second
            attempt.extend(earned / REPORT_MIN_RATE)
            earned = 0
    return written
