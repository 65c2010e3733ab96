"""The one exception tree of emg-batch, grouped by what the caller does.

* BatchError                   -- root; never raised itself
  x UsageError                 -- bad options or configuration; nothing sent (exit 2)
  x ManifestError              -- the manifest cannot be used; nothing sent (exit 2)
    + ReadFailure              -- the file cannot be read at all (raised by the readers,
                                  turned into a ManifestError naming the file)
  x PayloadError               -- one family's payload cannot be made
    + ResolveError             -- a look-up (storage, listing, sample) failed; the server's words
    + BuildError               -- building failed; the message goes to the proband row
  x LedgerError                -- the ledger cannot be used (foreign, locked, unwritable) (exit 2)
  x OutputError                -- an output file or folder cannot be written (exit 3)
  x CredentialError            -- credentials cannot be had (a password command failed);
                                  nothing sent (exit 3)
    + UnsafePath               -- a symbolic link (or other non-file) where a pulled report
                                  goes: refused, recorded against the case
  x ApiError                   -- one request failed; carries status, method, path, message
    + TransientError           -- worth retrying
      - ConnectError           -- the connection failed before a request was sent
      - RequestTimeout         -- no answer in time
      - RateLimited            -- 429; carries ``retry_after`` (seconds or None)
      - ServerError            -- 500, 502, 503, 504
    + PermanentError           -- do not retry: record it against the family and move on
      - NotFound               -- 404
      - Forbidden              -- 403 that persists after a fresh login: the account lacks
                                  the role for that route (recorded against the step)
      - ListingError           -- a paginated listing that does not end (a repeated page, a
                                  total that changes, an offset past the cap)
      - RedirectRefused        -- a redirect not followed (another origin, HTTPS to HTTP, a
                                  request other than GET, too many hops); names the Location
      - BodyTooLarge           -- an answer over its size limit; not read further
      - ListingError           -- a listing that pages inconsistently (a repeated page, a
                                  total that changes, more pages than the bound)
    + AmbiguousCreate          -- a create was sent and its outcome is unknown (reconcile)
    + AuthError                -- login refused, or a token that a fresh login cannot fix
    + RetriesExhausted         -- a transient failure outlived the retry policy or budget
  x Undecided                  -- whether a family's case exists (or a step took effect) cannot
                                  be told: the step is recorded unknown, the family needs review

Only ``batch/api/http.py`` translates foreign (aiohttp) exceptions into these, and only
``batch/outputs/files.py`` turns ``OSError`` from writing an output into ``OutputError``.
Server messages are truncated (``truncate``); secrets never appear.
"""

from __future__ import annotations

#: Characters of a server's message kept in an error, the cut mark included.
SERVER_MESSAGE_LIMIT = 500


def truncate(text: str, limit: int = SERVER_MESSAGE_LIMIT) -> str:
    """Shorten *text* to *limit* characters, marking the cut: a hard cap on a whole message
    (a server's words, an event's error) rather than a value quoted in one."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"

class BatchError(Exception):
    """Root of every error emg-batch raises on purpose."""


class UsageError(BatchError):
    """Bad options or configuration: raised before anything is sent."""


class CannotListen(UsageError):
    """A server cannot listen on the address and port asked for (in use, not this machine's)."""


class ManifestError(BatchError):
    """The manifest cannot be used; ``problems`` lists every problem found in one pass."""

    def __init__(self, message: str, *, problems: list[object] | None = None) -> None:
        super().__init__(message)
        self.problems: list[object] = list(problems or [])


class ReadFailure(ManifestError):
    """The file cannot be read; ``row``, ``column`` and ``value`` locate the cell to blame when
    there is one, ``sheet`` the workbook sheet it is on."""

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        hint: str | None = None,
        column: str | None = None,
        value: str | None = None,
        sheet: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.row = row
        self.hint = hint
        self.column = column
        self.value = value
        self.sheet = sheet


class PayloadError(BatchError):
    """One family's payload cannot be made; ``message`` says why, in the server's words
    where a look-up failed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ResolveError(PayloadError):
    """A look-up failed (unknown storage, missing path, no such sample)."""


class BuildError(PayloadError):
    """The payload cannot be built; the message goes to the proband row (BEHAVIOUR §5.6)."""


class LedgerError(BatchError):
    """The ledger cannot be used: it belongs to another manifest, is locked or unwritable."""


class LedgerWriteError(LedgerError):
    """The ledger's disk refused a write (full, over a size limit, an I/O error): like an output
    that cannot be written, the command stops (exit 3), never a usage error."""


class OutputError(BatchError):
    """An output (results file, workbook, table, report, template) cannot be written."""


class UnsafePath(OutputError):
    """A path inside the output folder that is not followed (a symbolic link, or not a plain
    file or folder): the case it belongs to is refused, the others go on."""


class CredentialError(BatchError):
    """The password cannot be had: the command that gives it failed, hung or printed none.
    The message names the command's origin, never its output."""


class ApiError(BatchError):
    """One request to the Emedgene API failed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(truncate(message))
        self.message = truncate(message)
        self.status = status
        self.method = method
        self.path = path

    @property
    def kind(self) -> str:
        """The class name, as recorded in the ledger's ``error_class``."""
        return type(self).__name__


class TransientError(ApiError):
    """A failure worth retrying after a pause."""


class ConnectError(TransientError):
    """The connection failed before the request reached the server."""


class RequestTimeout(TransientError):
    """The server did not answer in time."""


class RateLimited(TransientError):
    """HTTP 429: the server asks us to slow down."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ServerError(TransientError):
    """HTTP 500, 502, 503 or 504."""


class PermanentError(ApiError):
    """A failure that a retry will not fix (most 4xx): recorded, then the run moves on."""


class NotFound(PermanentError):
    """HTTP 404."""


class Forbidden(PermanentError):
    """HTTP 403 to a freshly issued token, after one re-login: not an expired token nor a
    failed login, but an account without the role (from Emedgene v38, an IAM scope) for that
    route. The step fails with the route named; the others go on."""


class ListingError(PermanentError):
    """A paginated listing that would not end or does not hold together: a page that repeats,
    a ``total`` that changes while it is read, or an offset past the cap. Nothing read of it
    is trusted and nothing more is asked for."""


class RedirectRefused(PermanentError):
    """A redirect the client does not follow: the password and patient data go to the
    configured host only. ``location`` is where the server pointed (no query, cut short)."""

    def __init__(self, message: str, *, location: str, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.location = location


class BodyTooLarge(PermanentError):
    """An answer larger than its limit (``limit`` bytes); the rest of it was not read."""

    def __init__(self, message: str, *, limit: int, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.limit = limit


class ServerUnreachable(BatchError):
    """A command that needs the server stopped early: it did not answer (retries exhausted,
    connection refused). Exit 3."""


class AmbiguousCreate(ApiError):
    """A create was sent but its outcome is unknown: never re-send it blindly."""


class Undecided(BatchError):
    """Whether the family's case exists cannot be told (the family needs review)."""


class AuthError(ApiError):
    """Login refused, or the server keeps refusing a fresh token: the run stops."""


class RetriesExhausted(ApiError):
    """A transient failure lasted longer than the retry policy or the run's retry budget."""

    def __init__(self, last: ApiError) -> None:
        super().__init__(
            f"gave up after retries: {last.message}",
            status=last.status,
            method=last.method,
            path=last.path,
        )
        self.last = last
