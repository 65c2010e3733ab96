"""``emg-batch sandbox``: serve the emulator from the command line until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import click

from batch.api.net import is_loopback
from batch.sandbox.config import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig
from batch.sandbox.server import run_sandbox


async def _serve(config: SandboxConfig, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on some platforms
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with run_sandbox(config, host=host, port=port) as running:
        click.echo(f"Emedgene sandbox at {running.url} "
                   f"(user {DEFAULT_USER}, password {DEFAULT_PASSWORD}); Ctrl-C to stop",
                   )
        await stop.wait()


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port (0: any free one).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host.")
@click.option("--fixture", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Conformance-format fixture (storages, samples, users, gene lists).")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path),
              help="Append one JSON line per request to this file.")
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True),
              help="Requests per second before answering 429.")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, help="Added latency.")
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Probability of a 500/502/503.")
@click.option("--drop-after-commit", type=click.FloatRange(0, 1), default=0.0,
              help="Probability of closing the connection after storing a created case.")
@click.option("--token-ttl", type=click.FloatRange(min=0), default=8 * 3600.0,
              show_default=True, help="Token lifetime in seconds.")
@click.option("--advance-after", type=click.FloatRange(min=0),
              help="Seconds per automatic status step (0: delivered at once).")
@click.option("--webhook", help="URL that receives a JSON POST on every status change.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random choice.")
def sandbox_command(
    *,
    host: str,
    port: int,
    allow_remote: bool,
    fixture: Path | None,
    record: Path | None,
    rate_limit: float | None,
    latency_ms: float,
    error_rate: float,
    drop_after_commit: float,
    token_ttl: float,
    advance_after: float | None,
    webhook: str | None,
    seed: int,
) -> None:
    """Serve an in-memory emulator of the Emedgene API until Ctrl-C."""
    if not allow_remote and not is_loopback(host):
        raise click.BadParameter(
            f"{host} is not a loopback address; add --allow-remote to serve on it",
            param_hint="--host",
        )
    config = SandboxConfig(
        fixture=fixture, record=record, rate_limit=rate_limit, latency_ms=latency_ms,
        error_rate=error_rate, drop_after_commit=drop_after_commit, token_ttl=token_ttl,
        advance_after=advance_after, webhook=webhook, seed=seed,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(config, host, port))
