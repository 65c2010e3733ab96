"""Which server a ledger belongs to: the ``binding`` table (one row: host and account).

The cases a ledger records exist on one server only. Used against another, a run would skip
every family as done and create nothing there, so a ledger that records work done on its
server refuses any other host. A ledger whose work reached no server (a dry run, refused
creates) takes the host it is next used with; an older ledger without the table takes the
host of its last run. The account (a username, or
``token``) is kept to be shown; secrets never are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from batch.errors import LedgerError
from batch.ledger.db import Database
from batch.ledger.states import State

#: The host of a ledger made with ``--sandbox`` (an in-process sandbox on a new port each time).
SANDBOX_HOST = "sandbox"
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Step states that mean a request may have reached the server (or did, and succeeded).
REACHED = (State.SENDING.value, State.SUCCEEDED.value, State.UNKNOWN.value)


@dataclass(frozen=True, slots=True)
class Binding:
    """The server a ledger belongs to: its base URL (or ``sandbox``) and the account."""

    host: str
    account: str | None = None

    def __str__(self) -> str:
        return shown(self.host) + (f" (account {self.account})" if self.account else "")


def canonical_host(host: str) -> str:
    """*host* as a ledger compares it: scheme and name in lower case, no default port, no
    trailing ``/``."""
    if host == SANDBOX_HOST:
        return host
    parts = urlsplit(host.strip())
    scheme = parts.scheme.lower()
    name = (parts.hostname or "").lower()
    name = f"[{name}]" if ":" in name else name
    try:
        port = parts.port
    except ValueError:  # not a number: keep what was given, it cannot match another anyway
        return host.strip().rstrip("/")
    netloc = name if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{name}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def shown(host: str) -> str:
    """A ledger's host in words."""
    return "the built-in sandbox (--sandbox)" if host == SANDBOX_HOST else host


def foreign_host(path: Path, bound: Binding, host: str) -> LedgerError:
    """The refusal of a ledger used against *host*, with the two ways to go on."""
    return LedgerError(
        f"ledger {path} belongs to {bound}, not to {shown(host)}: nothing was sent. Its cases "
        f"are on that server; to work with {shown(host)}, start a new ledger with --ledger "
        f"NEW.sqlite, or move {path} away."
    )


class Bindings(Database):
    """The server a ledger belongs to, checked before anything is sent."""

    def binding(self) -> Binding | None:
        """The server this ledger belongs to; for a ledger never bound, its last run's."""
        row = self._execute("SELECT host, account FROM binding WHERE id = 1").fetchone()
        if row is not None:
            # the migration copies a run's host as it was written
            return Binding(canonical_host(str(row[0])), None if row[1] is None else str(row[1]))
        run = self._execute(
            "SELECT host FROM runs WHERE host IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
        return None if run is None else Binding(canonical_host(str(run[0])))

    def holds_work(self) -> bool:
        """Whether anything was recorded: a run, a family or a webhook event."""
        found = self._execute(
            "SELECT EXISTS (SELECT 1 FROM runs) OR EXISTS (SELECT 1 FROM families)"
            " OR EXISTS (SELECT 1 FROM events)").fetchone()
        return bool(found[0])

    def holds_server_work(self) -> bool:
        """Whether the server may hold something this ledger records: a step that succeeded
        or may have reached it (sending, unknown), or a webhook event it sent. A dry run, or
        a run whose every request was refused, created nothing anywhere."""
        found = self._execute(
            "SELECT EXISTS (SELECT 1 FROM steps WHERE state IN (?, ?, ?))"
            " OR EXISTS (SELECT 1 FROM events)", REACHED).fetchone()
        return bool(found[0])

    def check_host(self, host: str) -> None:
        """``LedgerError`` when this ledger holds work done on a server other than *host*."""
        bound = self.binding()
        if (bound is not None and bound.host != canonical_host(host)
                and self.holds_server_work()):
            raise foreign_host(self.path, bound, canonical_host(host))

    def bind(self, host: str, account: str | None) -> Binding:
        """Check *host* (see :meth:`check_host`) and record it with *account*; committed now.

        The first account is kept; one recorded before accounts were is filled in.
        """
        host = canonical_host(host)
        with self.transaction():
            self.check_host(host)
            bound = self.binding()
            if bound is not None and bound.host == host and bound.account is not None:
                return bound
            self._execute("INSERT OR REPLACE INTO binding (id, host, account, bound_at)"
                          " VALUES (1, ?, ?, ?)", (host, account, time.time()))
        return Binding(host, account)
