"""What every command shares: error → exit code mapping, credentials, host options, numbers,
messages and logging.

Exit codes: 0 all done; 1 finished, some failed or unknown; 2 usage, configuration or manifest
error, nothing sent; 3 stopped early (--max-failures, auth refused); 130 interrupted.

Streams: a command's data (``--json``, a report it was asked for) goes to stdout; progress,
summaries, the paths of written files, warnings and errors go to stderr, and ``--quiet`` keeps
only the errors there.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import anyio
import click

from batch import jobs
from batch.api import Credentials, normalise_host
from batch.errors import (
    AuthError,
    BatchError,
    LedgerError,
    ListingError,
    ManifestError,
    OutputError,
    UsageError,
)

# uvloop's event loop spends less CPU per request than asyncio's own; used where installed.
HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None

T = TypeVar("T")

QUIET_HELP = "Nothing on stderr but errors (data on stdout is still printed)."

ENVIRONMENT = """\b
Environment:
  EMG_HOST       tenant URL, e.g. https://lab.emg.illumina.com (instead of --host)
  EMG_USERNAME   user for POST /api/auth/v2/api_login/
  EMG_PASSWORD   password (prompted for when missing and stdin is a terminal)
  EMG_TOKEN      a ready bearer token instead of username and password
"""


class Number(click.FloatRange):
    """The type of every numeric option: a finite number (never nan or inf) within bounds, a
    whole one with *integer*; anything else is a usage error naming the option (exit 2)."""

    def __init__(self, min: float | None = None, max: float | None = None, *,
                 min_open: bool = False, integer: bool = False) -> None:
        super().__init__(min, max, min_open=min_open)
        self.integer = integer
        self.name = "integer" if integer else "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number: float | int = self._finite(value, param, ctx)
        if self.integer:
            if not float(number).is_integer():
                self.fail(f"{value!r} is not a whole number.", param, ctx)
            number = _exact_int(value, int(number))
        low = self.min is not None and (number <= self.min if self.min_open
                                        else number < self.min)
        if low or (self.max is not None and number > self.max):
            self.fail(f"{value} is not in the range {self._describe_range()}.", param, ctx)
        return number

    def _finite(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number.", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def _exact_int(value: Any, rounded: int) -> int:
    """*value* as an int without a detour through float (a large seed keeps every digit)."""
    try:
        return int(str(value).strip())
    except ValueError:  # "1e3", "2.0"
        return rounded


def say(text: str, *, quiet: bool = False) -> None:
    """A line for people on stderr (progress, summaries, written files, warnings); nothing
    under --quiet."""
    if not quiet:
        click.echo(text, err=True)


def fail(message: str, hint: str | None, code: int) -> NoReturn:
    """Print one error line (and a hint) on stderr and exit with *code*."""
    click.echo(f"Error: {message}", err=True)
    if hint:
        click.echo(f"Hint: {hint}", err=True)
    sys.exit(code)


def first_batch_error(exc: BaseException) -> BaseException:
    """Unwrap exception groups from task groups to the error that matters."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) >= 1:
        inner = [e for e in exc.exceptions if isinstance(e, BatchError)]
        exc = inner[0] if inner else exc.exceptions[0]
    return exc


def call(coro_fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
    """Run a library coroutine; turn expected errors into one line and an exit code."""
    result: T = call_sync(anyio.run, functools.partial(coro_fn, *args, **kwargs),
                          backend_options={"use_uvloop": HAS_UVLOOP})
    return result


def call_sync(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a library function; turn expected errors into one line and an exit code."""
    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt:
        fail("interrupted", "rerun the same command to resume", 130)
    except BaseException as group:  # groups are unwrapped; anything unexpected is re-raised
        exc = first_batch_error(group)
        if not isinstance(exc, BatchError):
            raise
        fail_for(exc)


def fail_for(exc: BatchError) -> NoReturn:
    """Exit with the line, hint and code that an expected error calls for."""
    if isinstance(exc, ManifestError):
        for problem in exc.problems:
            if str(problem) != str(exc):
                click.echo(str(problem), err=True)
        fail(str(exc), "fix the manifest; nothing was sent", 2)
    if isinstance(exc, LedgerError | UsageError):
        fail(str(exc), None, 2)
    if isinstance(exc, OutputError):
        fail(str(exc), "free space or fix permissions, then rerun the same command", 3)
    if isinstance(exc, AuthError):
        fail(f"authentication refused: {exc.message}",
             "check EMG_USERNAME/EMG_PASSWORD or EMG_TOKEN", 3)
    if isinstance(exc, ListingError):
        fail(str(exc), "nothing past the listing was done; rerun the same command later", 3)
    fail(str(exc), None, 1)


def credentials() -> Credentials | None:
    """Credentials from the environment, or a prompt on a terminal; None when neither."""
    env = os.environ
    if env.get("EMG_TOKEN") or (env.get("EMG_USERNAME") and env.get("EMG_PASSWORD")):
        try:
            return Credentials.from_env(env)
        except UsageError as exc:
            raise click.UsageError(str(exc)) from None
    if sys.stdin.isatty():
        user = env.get("EMG_USERNAME") or click.prompt("Emedgene user (e-mail)", err=True)
        password = click.prompt("Password", hide_input=True, err=True)
        return Credentials(username=user, password=password)
    return None


def target(host: str | None, sandbox: bool, *, needed: bool = True) -> jobs.Target | None:
    """Where requests go, from --host / $EMG_HOST / --sandbox."""
    given = host is not None
    host = host or os.environ.get("EMG_HOST")
    if sandbox:
        if host:
            raise click.UsageError("--host and --sandbox exclude each other")
        return jobs.Target(sandbox=True)
    if not host:
        if needed:
            raise click.UsageError(jobs.NO_HOST)
        return None
    _check_host(host, given=given)
    found = credentials()
    if found is None:
        raise click.UsageError("no credentials: set EMG_USERNAME and EMG_PASSWORD, or EMG_TOKEN")
    return jobs.Target(host=host, credentials=found)


def _check_host(host: str, *, given: bool) -> None:
    """A host that cannot be used is a usage error before any prompt or request."""
    try:
        normalise_host(host)
    except UsageError as exc:
        raise click.BadParameter(str(exc), param_hint="'--host'" if given else "EMG_HOST") \
            from None


def setup_logging(verbose: int, quiet: bool = False) -> None:
    """Logs to stderr: warnings by default, -v info, -vv debug, --quiet errors only."""
    if quiet:
        level = logging.ERROR
    else:
        level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def host_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--host / --sandbox."""
    fn = click.option("--sandbox", is_flag=True,
                      help="Start the built-in Emedgene sandbox on loopback and use it.")(fn)
    return click.option(
        "--host", metavar="URL",
        help="Tenant URL (https://<tenant>.emg.illumina.com); default $EMG_HOST.")(fn)


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--verbose / --quiet."""
    fn = click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)(fn)
    return click.option("-v", "--verbose", count=True,
                        help="More detail on stderr (-vv: debug).")(fn)
