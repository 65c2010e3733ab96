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
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from batch import jobs
from batch.api import normalise_host
from batch.errors import (
    AuthError,
    BatchError,
    CredentialError,
    LedgerError,
    LedgerWriteError,
    ListingError,
    ManifestError,
    OutputError,
    ServerUnreachable,
    UsageError,
)
from batch.jobs import Setting, Tenant
from batch.jobs.tenants import MAX_CONCURRENCY

if TYPE_CHECKING:
    from batch.api import Credentials

# uvloop's event loop spends less CPU per request than asyncio's own; used where installed.
HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

QUIET_HELP = "Nothing on stderr but errors (data on stdout is still printed)."
#: --quiet of a command whose data is the files it writes (nothing goes to stdout).
FILES_QUIET_HELP = "Nothing on stderr but errors (the files are written all the same)."

ENVIRONMENT = """\b
Environment:
  EMG_HOST       tenant URL, e.g. https://lab.emg.illumina.com (instead of --host)
  EMG_USERNAME   user for POST /api/auth/v2/api_login/
  EMG_PASSWORD   password (prompted for when missing and stdin is a terminal)
  EMG_TOKEN      a ready bearer token instead of username and password
  EMG_TENANT     a tenant of the config file (instead of --tenant); see docs/tenants.md
"""


class Number(click.FloatRange):
    """The type of every numeric option: a finite number (never nan or inf) within bounds, a
    whole one with *integer*; anything else is a usage error naming the option (exit 2).

    The bounds are click's own range types (``click.IntRange`` for whole numbers,
    ``click.FloatRange`` otherwise); this type adds only what they lack: refusing nan and inf
    (``float("nan")`` passes every comparison click makes) and whole numbers written as
    ``2.0`` or ``1e3``."""

    def __init__(self, min: float | None = None, max: float | None = None, *,
                 min_open: bool = False, integer: bool = False) -> None:
        super().__init__(min, max, min_open=min_open)
        self.integer = integer
        self.name = "integer" if integer else "float"
        self._within: Callable[[Any, click.Parameter | None, click.Context | None], Any] = (
            click.IntRange(_whole(min), _whole(max), min_open=min_open) if integer
            else click.FloatRange(min, max, min_open=min_open)).convert

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number: float | int = self._finite(value, param, ctx)
        if self.integer:
            if not float(number).is_integer():
                self.fail(f"{value!r} is not a whole number.", param, ctx)
            number = _exact_int(value, int(number))
        return self._within(number, param, ctx)

    def _describe_range(self) -> str:
        """The range as help shows it; nothing for a number without bounds (click would
        print ``x<=None``)."""
        if self.min is None and self.max is None:
            return ""
        return str(super()._describe_range())

    def _finite(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number.", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def _whole(bound: float | None) -> int | None:
    """A bound of a whole-number option, as click's ``IntRange`` takes it."""
    return None if bound is None else int(bound)


def concurrency_option(*, default: int, maximum: int = MAX_CONCURRENCY,
                       help: str) -> Callable[[F], F]:
    """``--concurrency``: the one place its bounds are checked for people (a tenant's
    ``concurrency`` setting is checked where the config file is read, with the same bound)."""
    return click.option("--concurrency", type=Number(1, maximum, integer=True),
                        default=default, show_default=True, help=help)


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
    import anyio  # with the event loop, only for a command that runs one

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
    if isinstance(exc, OutputError | LedgerWriteError):
        fail(str(exc), "free space or fix permissions, then rerun the same command", 3)
    if isinstance(exc, LedgerError | UsageError):
        fail(str(exc), None, 2)
    if isinstance(exc, ServerUnreachable):
        fail(str(exc), "check the host (--host or EMG_HOST) and that the server answers "
                       "(emg-batch doctor), then rerun the same command", 3)
    if isinstance(exc, CredentialError):
        fail(str(exc), "run the command yourself to see what it says; nothing was sent", 3)
    if isinstance(exc, AuthError):
        fail(f"authentication refused: {exc.message}",
             "check EMG_USERNAME/EMG_PASSWORD or EMG_TOKEN", 3)
    if isinstance(exc, ListingError):
        fail(str(exc), "nothing past the listing was done; rerun the same command later", 3)
    fail(str(exc), None, 1)


def credentials(tenant: Tenant | None = None) -> tuple[Credentials | None, list[Setting]]:
    """Credentials from the environment, the tenant's username and password command, or a
    prompt on a terminal (None when none of them gives both); and where each came from."""
    from batch.api import Credentials  # the transport (aiohttp) for a command that uses it

    env = os.environ
    if env.get("EMG_TOKEN") or (env.get("EMG_USERNAME") and env.get("EMG_PASSWORD")):
        return _from_env()
    user, user_origin = _username(tenant)
    if user is None:
        if not sys.stdin.isatty():
            return None, []
        user, user_origin = click.prompt("Emedgene user (e-mail)", err=True), "prompt"
    password, password_origin = _password(tenant)
    if password is None:
        return None, []
    return Credentials(username=user, password=password), [
        Setting("username", user, user_origin), Setting("password", "hidden", password_origin)]


def _from_env() -> tuple[Credentials, list[Setting]]:
    """``EMG_TOKEN``, or ``EMG_USERNAME`` with ``EMG_PASSWORD``."""
    from batch.api import Credentials

    try:
        found = Credentials.from_env(os.environ)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    if found.token and not found.password:
        return found, [Setting("token", "hidden", "EMG_TOKEN")]
    return found, [Setting("username", found.username or "", "EMG_USERNAME"),
                   Setting("password", "hidden", "EMG_PASSWORD")]


def _password(tenant: Tenant | None) -> tuple[str | None, str]:
    """``EMG_PASSWORD``, else the tenant's password command, else a prompt on a terminal."""
    if os.environ.get("EMG_PASSWORD"):
        return os.environ["EMG_PASSWORD"], "EMG_PASSWORD"
    if tenant is not None and tenant.password_command:
        label = f"password_command of tenant {tenant.name}"
        return call_sync(jobs.run_password_command, tenant.password_command, label=label), label
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, err=True), "prompt"
    return None, "none"


def _username(tenant: Tenant | None) -> tuple[str | None, str]:
    """``EMG_USERNAME``, else the tenant's username."""
    given = os.environ.get("EMG_USERNAME", "").strip()
    if given:
        return given, "EMG_USERNAME"
    if tenant is not None and tenant.username:
        return tenant.username, f"tenant {tenant.name}"
    return None, "prompt"


def config_path() -> Path:
    """The config file that names tenants (``$XDG_CONFIG_HOME/emg-batch/config.toml``, else
    the platform's configuration folder)."""
    return jobs.config_file(os.environ, Path(click.get_app_dir("emg-batch")))


def target(host: str | None, sandbox: bool, tenant: str | None = None, *,
           needed: bool = True) -> jobs.Target | None:
    """Where requests go, from --host / --sandbox / --tenant, $EMG_HOST / $EMG_TENANT and the
    config file's default tenant (docs/tenants.md), with where each setting came from. An
    explicit --sandbox wins over $EMG_HOST (with a note); --host with --sandbox is a usage
    error."""
    picked = _pick(host, sandbox, tenant)
    if sandbox:  # an explicit --sandbox wins over $EMG_HOST, with a note
        if host:
            raise click.UsageError("--host and --sandbox exclude each other")
        _note_unused_host()
        return jobs.Target(sandbox=True, settings=(Setting("host", "built-in sandbox",
                                                           "--sandbox"),))
    chosen, origin = _host(host, picked)
    if not chosen:
        if needed:
            raise click.UsageError(f"{jobs.NO_HOST}, or --tenant NAME (a [tenants.NAME] "
                                   f"table of {config_path()})")
        return None
    _check_host(chosen, given=host is not None)
    found, who = _credentials_of(picked)
    chosen_by = [Setting("tenant", picked.tenant.name, picked.origin or "")] \
        if picked.tenant else []
    settings = (*chosen_by, Setting("host", chosen, origin), *who,
                *_tuning_settings(picked.tenant))
    return jobs.Target(host=chosen, credentials=found, tenant=picked.tenant, settings=settings)


def _pick(host: str | None, sandbox: bool, tenant: str | None) -> jobs.Picked:
    """The config file's tenant for this command (notes about it on stderr)."""
    named = "--host" if host is not None else "--sandbox" if sandbox else None
    picked = call_sync(jobs.pick_tenant, config_path(), os.environ, option=tenant,
                       host_option=named)
    for note in picked.notes:
        say(note, quiet=_quiet())
    return picked


def _credentials_of(picked: jobs.Picked) -> tuple[Credentials, list[Setting]]:
    """The credentials for the picked tenant (or none); a usage error when there are none."""
    found, who = credentials(picked.tenant)
    if found is None:
        also = (f", or username and password_command in tenant {picked.tenant.name}"
                if picked.tenant else "")
        raise click.UsageError("no credentials: set EMG_USERNAME and EMG_PASSWORD, or "
                               f"EMG_TOKEN{also}")
    return found, who


def _host(host: str | None, picked: jobs.Picked) -> tuple[str | None, str]:
    """--host, else the tenant's host, else $EMG_HOST; and which it was."""
    if host is not None:
        return host, "--host"
    if picked.tenant is not None:
        return picked.tenant.host, picked.label
    return os.environ.get("EMG_HOST"), "EMG_HOST"


#: The options a tenant gives defaults for.
TUNED = ("rate", "concurrency")


def tuned(where: jobs.Target | None, rate: float | None,
          concurrency: int) -> tuple[float | None, int]:
    """--rate and --concurrency: the tenant's values where the options were not given."""
    tenant = where.tenant if where is not None else None
    found_rate = _tuning("rate", tenant)
    found_concurrency = _tuning("concurrency", tenant)
    return (rate if found_rate is None else found_rate[0],
            concurrency if found_concurrency is None else int(found_concurrency[0]))


def _tuning(name: str, tenant: Tenant | None) -> tuple[float, str] | None:
    """The tenant's *name* setting and its origin, unless the option was given."""
    value = getattr(tenant, name) if tenant is not None else None
    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source(name) if ctx is not None else None
    given = source not in (None, click.core.ParameterSource.DEFAULT)
    if value is None or given or tenant is None:
        return None
    return float(value), f"tenant {tenant.name}"


def _tuning_settings(tenant: Tenant | None) -> list[Setting]:
    """--rate and --concurrency as the command uses them, and where they came from."""
    ctx = click.get_current_context(silent=True)
    settings = []
    for name in TUNED:
        found = _tuning(name, tenant)
        if found is not None:
            settings.append(Setting(name, f"{found[0]:g}", found[1]))
        elif ctx is not None and name in ctx.params:
            source = ctx.get_parameter_source(name)
            value = ctx.params[name]
            given = source not in (None, click.core.ParameterSource.DEFAULT)
            shown = "adaptive" if value is None else f"{value:g}"
            settings.append(Setting(name, shown, f"--{name}" if given else "default"))
    return settings


def settings_record(where: jobs.Target | None) -> tuple[dict[str, str], ...]:
    """The target's settings as a run records them in its ledger (``status`` shows them)."""
    return tuple({"name": s.name, "value": s.value, "origin": s.origin}
                 for s in (where.settings if where is not None else ()))


def _quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.params.get("quiet"))


def _note_unused_host() -> None:
    """Say that $EMG_HOST is set and not used (--sandbox was asked for), unless --quiet."""
    environment = os.environ.get("EMG_HOST")
    context = click.get_current_context(silent=True)
    quiet = bool(context is not None and context.params.get("quiet"))
    if environment and not quiet:
        click.echo(f"note: --sandbox: EMG_HOST ({environment}) is not used", err=True)


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
    """--host / --sandbox / --tenant."""
    fn = click.option("--tenant", metavar="NAME", default=None,
                      help="A tenant named in the config file (host, username, defaults); "
                           "default $EMG_TENANT, else its default_tenant. See "
                           "docs/tenants.md.")(fn)
    fn = click.option("--sandbox", is_flag=True,
                      help="Start the built-in Emedgene sandbox on loopback and use it.")(fn)
    return click.option(
        "--host", metavar="URL",
        help="Tenant URL (https://<tenant>.emg.illumina.com); default $EMG_HOST.")(fn)


def output_options(fn: Callable[..., Any], *, quiet_help: str = QUIET_HELP,
                   ) -> Callable[..., Any]:
    """--verbose / --quiet."""
    fn = click.option("-q", "--quiet", is_flag=True, help=quiet_help)(fn)
    return click.option("-v", "--verbose", count=True,
                        help="More detail on stderr (-vv: debug).")(fn)


def file_output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--verbose / --quiet of a command whose data is the files it writes."""
    return output_options(fn, quiet_help=FILES_QUIET_HELP)
