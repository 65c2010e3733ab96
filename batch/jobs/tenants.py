"""Tenants by name: the config file (``$XDG_CONFIG_HOME/emg-batch/config.toml``), which tenant a
command uses, and where each of its settings came from.

The file names tenants in ``[tenants.NAME]`` tables (``host``, ``username``,
``password_command``, ``rate``, ``concurrency``) and may name a ``default_tenant``. It never
holds a password: a ``password`` (or ``token``) key is refused, and a file that others can read
or change is refused while it holds a ``password_command`` (it says where the secret is, and
whoever can change it can run a command as you).

Settings resolve one by one: option > environment > tenant file > built-in default. The server
is named once: ``--tenant`` together with ``--host`` or ``--sandbox`` is refused, and a tenant
whose host differs from ``EMG_HOST`` too; a tenant that comes only from ``EMG_TENANT`` or
``default_tenant`` gives way to ``--host``/``--sandbox`` (and ``default_tenant`` to
``EMG_HOST``), so a username or password command meant for one server never goes to another.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from batch.api import normalise_host
from batch.errors import UsageError
from batch.text import clip, quoted

#: The file's name inside the configuration folder.
CONFIG_NAME = "config.toml"
#: The largest config file read (a few tenants take a few hundred bytes).
MAX_CONFIG_BYTES = 256 * 1024
#: Keys of a ``[tenants.NAME]`` table.
TENANT_KEYS = ("host", "username", "password_command", "rate", "concurrency")
#: Keys that would put a secret in the file: refused wherever they appear.
SECRET_KEYS = ("password", "token")
#: Keys that make a file others can read or change refused.
PRIVATE_KEYS = ("password_command",)
#: The bounds of ``rate`` and ``concurrency``, as the options' own.
MIN_RATE, MAX_CONCURRENCY = 0.01, 256
_TOML_AT = re.compile(r"^(?P<message>.*?)\s*\(at line (?P<line>\d+), column (?P<column>\d+)\)$")


@dataclass(frozen=True, slots=True)
class Tenant:
    """One named tenant of the config file: where it is, who logs in, its defaults."""

    name: str
    host: str
    username: str | None = None
    password_command: str | None = field(default=None, repr=False)
    rate: float | None = None
    concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class TenantFile:
    """The config file: its tenants by name and the default one."""

    path: Path
    tenants: Mapping[str, Tenant] = field(default_factory=dict)
    default: str | None = None

    def get(self, name: str, origin: str) -> Tenant:
        """The tenant called *name* (picked by *origin*); ``UsageError`` listing the known."""
        if name in self.tenants:
            return self.tenants[name]
        known = ", ".join(sorted(self.tenants)) or "none"
        raise UsageError(f"unknown tenant {quoted(name)} ({origin}): {self.path} names: {known}")


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting of a command: its value as shown (never a secret), and where it came from."""

    name: str
    value: str
    origin: str


@dataclass(frozen=True, slots=True)
class Picked:
    """The tenant a command uses (None: none), how it was picked, and notes for the user."""

    tenant: Tenant | None = None
    origin: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``tenant NAME``, as settings name their origin."""
        return f"tenant {self.tenant.name}" if self.tenant else "no tenant"


def config_file(env: Mapping[str, str], app_dir: Path) -> Path:
    """``$XDG_CONFIG_HOME/emg-batch/config.toml`` when that is set, else in *app_dir* (the
    platform's configuration folder for emg-batch)."""
    xdg = env.get("XDG_CONFIG_HOME", "").strip()
    folder = Path(xdg) / "emg-batch" if xdg and Path(xdg).is_absolute() else app_dir
    return folder / CONFIG_NAME


def pick_tenant(config: Path, env: Mapping[str, str], *, option: str | None = None,
                host_option: str | None = None) -> Picked:
    """The tenant named by ``--tenant`` (*option*), ``EMG_TENANT`` or ``default_tenant``.

    *host_option* is ``--host`` or ``--sandbox`` when one of them names the server. The file
    is read only when a tenant may be used. ``UsageError`` when the server is named twice, the
    tenant is unknown or the file cannot be used.
    """
    if option and host_option:
        raise UsageError(f"--tenant and {host_option} both name the server: give one of them")
    name, origin = (option, "--tenant") if option else (env.get("EMG_TENANT", "").strip(),
                                                       "EMG_TENANT")
    if name and host_option:
        return Picked(notes=(f"note: EMG_TENANT={clip(name)} not used: {host_option} "
                             "names the server",))
    if name:
        tenant = _read_or_fail(config, name, origin).get(name, origin)
        _check_env_host(tenant, env, origin)
        return Picked(tenant, f"{origin} in {config}")
    if host_option or env.get("EMG_HOST", "").strip() or not config.exists():
        return Picked()
    loaded = load_tenants(config)
    if loaded.default is None:
        return Picked()
    return Picked(loaded.get(loaded.default, "default_tenant"), f"default_tenant in {config}")


def _read_or_fail(config: Path, name: str, origin: str) -> TenantFile:
    if not config.exists():
        raise UsageError(f"unknown tenant {quoted(name)} ({origin}): there is no {config}; "
                         f"name it there in a [tenants.{clip(name)}] table with its host")
    return load_tenants(config)


def _check_env_host(tenant: Tenant, env: Mapping[str, str], origin: str) -> None:
    """``EMG_HOST`` naming another server than the tenant picked is refused."""
    given = env.get("EMG_HOST", "").strip()
    if not given:
        return
    try:
        same = normalise_host(given) == normalise_host(tenant.host)
    except UsageError:
        same = False
    if not same:
        raise UsageError(f"EMG_HOST ({clip(given)}) and tenant {tenant.name} ({origin}: "
                         f"{tenant.host}) name different servers: unset EMG_HOST or pick "
                         "no tenant")


def load_tenants(path: Path) -> TenantFile:
    """Read and check the config file; ``UsageError`` naming the file (and line) otherwise."""
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(_toml_message(path, str(exc))) from None
    found = _check_file(path, text, data)
    if any(getattr(t, key) for t in found.tenants.values() for key in PRIVATE_KEYS):
        _check_private(path)
    return found


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise UsageError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KB; is it the "
                         "emg-batch config file?")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text") from None


def _toml_message(path: Path, message: str) -> str:
    """``FILE:LINE: what is wrong (column C)`` from tomllib's words."""
    at = _TOML_AT.match(message)
    if at is None:
        return f"{path}: not valid TOML: {message}"
    return (f"{path}:{at['line']}: not valid TOML: {at['message']} "
            f"(column {at['column']})")


def _check_file(path: Path, text: str, data: Mapping[str, Any]) -> TenantFile:
    _refuse_secrets(path, text, data, None)
    for key in data:
        if key not in ("default_tenant", "tenants"):
            _fail(path, text, key, None, f"unknown setting {quoted(key)} (known: "
                  "default_tenant and [tenants.NAME] tables)")
    tables = data.get("tenants", {})
    if not isinstance(tables, dict):
        _fail(path, text, "tenants", None, "tenants must be tables: [tenants.NAME]")
    tenants = {name: _tenant(path, text, name, table) for name, table in tables.items()}
    default = data.get("default_tenant")
    if default is not None and (not isinstance(default, str) or default not in tenants):
        known = ", ".join(sorted(tenants)) or "none"
        _fail(path, text, "default_tenant", None,
              f"default_tenant = {quoted(str(default))} names no tenant (known: {known})")
    return TenantFile(path, tenants, default)


def _tenant(path: Path, text: str, name: str, table: Any) -> Tenant:
    if not isinstance(table, dict):
        _fail(path, text, None, name, f"must be a table: [tenants.{clip(name)}]")
    _refuse_secrets(path, text, table, name)
    for key in table:
        if key not in TENANT_KEYS:
            _fail(path, text, key, name, f"unknown setting {quoted(key)} (known: "
                  f"{', '.join(TENANT_KEYS)})")
    values = {key: _value(path, text, name, key, table[key]) for key in table}
    if "host" not in values:
        _fail(path, text, None, name, "has no host (host = \"https://<tenant>.emg.illumina.com\")")
    return Tenant(name=name, **values)


def _value(path: Path, text: str, tenant: str, key: str, value: Any) -> Any:
    """One tenant setting, checked as its option would be."""
    problem = _problem(key, value)
    if problem:
        _fail(path, text, key, tenant, f"{key}: {problem}")
    return float(value) if key == "rate" else value


def _problem(key: str, value: Any) -> str | None:
    """What is wrong with *value* for *key*, or None."""
    if key in ("rate", "concurrency"):
        return _number_problem(key, value)
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty text in quotes"
    if key == "host":
        try:
            normalise_host(value)
        except UsageError as exc:
            return str(exc)
    if key == "password_command":
        return _command_problem(value)
    return None


def _number_problem(key: str, value: Any) -> str | None:
    if key == "concurrency":
        ok = isinstance(value, int) and not isinstance(value, bool) \
            and 1 <= value <= MAX_CONCURRENCY
        return None if ok else f"must be a whole number from 1 to {MAX_CONCURRENCY}"
    ok = isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value) and value >= MIN_RATE
    return None if ok else f"must be a number of requests per second, at least {MIN_RATE}"


def _command_problem(command: str) -> str | None:
    try:
        return None if shlex.split(command) else "names no command"
    except ValueError as exc:  # an unclosed quote: say so, never echo the command
        return f"cannot be split into words ({exc})"


def _refuse_secrets(path: Path, text: str, table: Mapping[str, Any], tenant: str | None) -> None:
    for key in SECRET_KEYS:
        if key in table:
            _fail(path, text, key, tenant, f"a {key} is never read from this file: use "
                  "password_command = \"...\" (e.g. \"pass show emg/lab\"), EMG_PASSWORD, "
                  "or answer the prompt")


def _fail(path: Path, text: str, key: str | None, tenant: str | None, message: str) -> NoReturn:
    line = _line_of(text, key, tenant)
    where = f"{path}:{line}" if line else str(path)
    scope = f"tenant {quoted(tenant)}: " if tenant is not None else ""
    raise UsageError(f"{where}: {scope}{message}")


def _line_of(text: str, key: str | None, tenant: str | None) -> int | None:
    """The line where *key* is set (inside *tenant*'s table when given), or where *tenant*'s
    table starts (no *key*), for messages."""
    lines = text.splitlines()
    start = _table_start(lines, tenant) if tenant is not None else None
    if key is None:
        return None if start is None else start + 1
    pattern = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*[=.\]]")
    found = next((i for i in range(start or 0, len(lines)) if pattern.match(lines[i])), None)
    return None if found is None else found + 1


def _table_start(lines: list[str], tenant: str) -> int | None:
    header = re.compile(r"^\s*\[\s*tenants\s*\.\s*[\"']?" + re.escape(tenant) + r"[\"']?\s*\]")
    return next((i for i, line in enumerate(lines) if header.match(line)), None)


def _check_private(path: Path) -> None:
    """A file holding a password command must be the user's own, and theirs alone (POSIX)."""
    if os.name != "posix":
        return
    info = path.stat()
    if info.st_mode & 0o066:
        mode = stat.S_IMODE(info.st_mode)
        raise UsageError(f"{path} can be read or changed by others (mode {mode:04o}) and holds "
                         f"a password_command: run chmod 600 {path}")
    if info.st_uid != os.getuid():
        raise UsageError(f"{path} belongs to another user and holds a password_command: "
                         "only your own file may name a command to run")
