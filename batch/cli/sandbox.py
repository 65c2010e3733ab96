"""``emg-batch sandbox``: serve the emulator (:mod:`batch.sandbox`) from the command line until
Ctrl-C. Its data on stdout is the one line saying where it serves."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import click

from batch.api.http import is_loopback
from batch.cli.common import QUIET_HELP, Number, say
from batch.sandbox.config import DEFAULT_PASSWORD, DEFAULT_TOKEN_TTL, DEFAULT_USER, SandboxConfig
from batch.sandbox.fixture import FixtureError, load_fixture

DEFAULT_BIND = "127.0.0.1"
HOST_DEPRECATED = ("warning: sandbox --host is deprecated (elsewhere --host is the tenant URL); "
                   "use --bind for the address to listen on")


async def _serve(config: SandboxConfig, host: str, port: int) -> None:
    from batch.sandbox import run_sandbox  # aiohttp is loaded only when the sandbox serves

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on some platforms
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with run_sandbox(config, host=host, port=port) as running:
        click.echo(f"Emedgene sandbox at {running.url} "
                   f"(user {DEFAULT_USER}, password {DEFAULT_PASSWORD}); Ctrl-C to stop")
        await stop.wait()


def _bind_address(bind: str | None, host: str | None, allow_remote: bool, quiet: bool) -> str:
    if host is not None:
        say(HOST_DEPRECATED, quiet=quiet)
    address = bind or host or DEFAULT_BIND
    if not allow_remote and not is_loopback(address):
        raise click.BadParameter(
            f"{address} is not a loopback address; add --allow-remote to serve on it",
            param_hint="--bind")
    return address


@click.command("sandbox", epilog="""\b
Examples:
  emg-batch sandbox --port 8765 --advance-after 0
  emg-batch sandbox --port 8765 --token-ttl 60 --expired-status 401 --record calls.jsonl
  emg-batch sandbox --fixture my_fixture.json --rate-limit 20 --error-rate 0.05
""")
@click.option("--bind", help=f"Address to listen on.  [default: {DEFAULT_BIND}]")
@click.option("--host", hidden=True, help="Deprecated name of --bind.")
@click.option("--port", default=8000, show_default=True, type=Number(0, 65535, integer=True),
              help="Port (0: any free one).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --bind address.")
@click.option("--fixture", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Conformance-format fixture (storages, samples, users, gene lists, HPO terms).")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path),
              help="Append one JSON line per request to this file, as it happens (mode 0600).")
@click.option("--rate-limit", type=Number(min=0, min_open=True),
              help="Requests per second before answering 429.")
@click.option("--rate-limit-headers", is_flag=True,
              help="With --rate-limit: send the bucket as RateLimit-* and X-RateLimit-* headers.")
@click.option("--latency-ms", type=Number(min=0), default=0.0, help="Added latency.")
@click.option("--error-rate", type=Number(0, 1), default=0.0,
              help="Probability of a 500/502/503.")
@click.option("--drop-after-commit", type=Number(0, 1), default=0.0,
              help="Probability of closing the connection after storing a created case.")
@click.option("--token-ttl", type=Number(min=0), default=DEFAULT_TOKEN_TTL,
              show_default=True, help="Token lifetime in seconds.")
@click.option("--expired-status", type=click.Choice(["401", "403"]), default="403",
              show_default=True, help="What an expired token answers.")
@click.option("--advance-after", type=Number(min=0),
              help="Seconds per automatic status step (0: delivered at once).")
@click.option("--webhook", help="URL that receives a JSON POST on every status change.")
@click.option("--case-extras", is_flag=True,
              help="Add reports and preset_groups to the case object (not on the real one).")
@click.option("--report-listing/--no-report-listing", default=True, show_default=True,
              help="Serve GET /api/test/v2/{case}/reports (inferred; off: 404).")
@click.option("--seed", type=Number(integer=True), default=0, show_default=True,
              help="Seed of every random choice.")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
def sandbox_command(*, bind: str | None, host: str | None, port: int, allow_remote: bool,
                    quiet: bool, **options: Any) -> None:
    """Serve an in-memory emulator of the Emedgene API on loopback until Ctrl-C.

    It answers in the shapes of a real tenant; the default account is sandbox@example.com
    with password sandbox. GET /_sandbox/cases and /_sandbox/stats show what it holds.

    On stdout: one line once it serves, with its URL and account (with --quiet too); on
    stderr, warnings and errors (--quiet: errors only).
    """
    from batch.serving import CannotListen

    address = _bind_address(bind, host, allow_remote, quiet)
    options["expired_status"] = int(options["expired_status"])
    _check_files(options.get("fixture"), options.get("record"))
    config = SandboxConfig(**options)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(config, address, port))
    except CannotListen as err:  # the port is taken, or the address is not this machine's
        raise _Refused(str(err)) from None


def _check_files(fixture: Path | None, record: Path | None) -> None:
    """The fixture read and the record file's folder tried before serving (exit 2)."""
    if fixture is not None:
        try:
            load_fixture(fixture)
        except FixtureError as err:
            raise click.BadParameter(str(err), param_hint="'--fixture'") from None
    if record is not None and not record.parent.is_dir():
        raise click.BadParameter(f"{record}: its folder {record.parent} does not exist",
                                 param_hint="'--record'")


class _Refused(click.ClickException):
    """A refusal the user can fix (exit 2, as every usage error)."""

    exit_code = 2
