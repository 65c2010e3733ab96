"""Whole jobs as the command line runs them: each opens what it needs, works, writes outputs.

A job composes the lower layers (manifest → ledger → client → runner → review) so that the CLI
stays a thin layer and everything it does can be done from Python too.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch import review
from batch.client import ApiResolver, Client, Credentials
from batch.errors import ApiError, AuthError, RetriesExhausted, UsageError
from batch.ledger import Ledger, default_path
from batch.manifest import Family, Manifest, Problem, read_manifest, write_results_csv
from batch.payload import BuildError, ResolveError, build_payload, check_family, check_manifest_wide
from batch.pool import run_pool
from batch.progress import Progress, SilentProgress
from batch.retry import RetryPolicy
from batch.runner import CHECK_BATCH, RunOptions, RunSummary, run_manifest


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where requests go: a tenant host with credentials, or an in-process sandbox."""

    host: str | None = None
    credentials: Credentials | None = None
    sandbox: bool = False
    sandbox_fixture: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """How the client talks: rate (requests/s, None = adaptive), pool size, timeout (s)."""

    rate: float | None = None
    concurrency: int = 8
    timeout: float = 60.0
    retry: RetryPolicy | None = None


@dataclass(slots=True)
class RunResult:
    """What ``run`` produced."""

    summary: RunSummary
    host: str
    ledger: Path
    results: Path | None = None
    review: Path | None = None


@dataclass(slots=True)
class ValidationResult:
    """What ``validate`` found."""

    problems: list[Problem]
    families: int
    results: Path | None = None
    checked_on_server: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        """Problems that block sending."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def exit_code(self) -> int:
        """0 clean (warnings allowed), 2 with errors."""
        return 2 if self.errors else 0


def output_path(manifest: Path, suffix: str, out_dir: Path | None) -> Path:
    """``<stem><suffix>`` next to the manifest, or in *out_dir*."""
    return (out_dir or manifest.parent) / f"{manifest.stem}{suffix}"


@asynccontextmanager
async def open_client(target: Target, connection: Connection) -> AsyncIterator[Client]:
    """A logged-in-on-demand client for *target*; starts the sandbox when asked."""
    if target.sandbox:
        from batch.sandbox import (
            DEFAULT_PASSWORD,
            DEFAULT_USER,
            SandboxConfig,
            demo_fixture_path,
            run_sandbox,
        )

        fixture = target.sandbox_fixture or demo_fixture_path()
        async with run_sandbox(SandboxConfig(fixture=fixture, advance_after=0.0)) as sandbox:
            credentials = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
            async with _client(sandbox.url, credentials, connection) as client:
                yield client
        return
    if not target.host:
        raise UsageError("no host: pass --host URL (or set EMG_HOST), or --sandbox to try locally")
    credentials = target.credentials or Credentials.from_env(os.environ)
    async with _client(target.host, credentials, connection) as client:
        yield client


@asynccontextmanager
async def _client(host: str, credentials: Credentials, c: Connection) -> AsyncIterator[Client]:
    async with Client(host, credentials=credentials, rate=c.rate, concurrency=c.concurrency,
                      retry=c.retry, timeout=c.timeout) as client:
        yield client


def open_ledger(manifest: Path, ledger: Path | None) -> Ledger:
    """The ledger for *manifest*, locked for this process."""
    opened = Ledger.open(ledger or default_path(manifest))
    try:
        opened.lock()
    except BaseException:
        opened.close()
        raise
    return opened


async def run_job(
    manifest_path: Path,
    *,
    target: Target,
    connection: Connection,
    options: RunOptions,
    ledger_path: Path | None = None,
    out_dir: Path | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """``emg-batch run``: read, validate, run, and write the results file and review workbook."""
    manifest = read_manifest(manifest_path)
    progress = progress or SilentProgress()
    _make_out_dir(out_dir)
    with open_ledger(manifest_path, ledger_path) as ledger:
        try:
            async with open_client(target, connection) as client:
                summary = await run_manifest(manifest, client=client, ledger=ledger,
                                             options=options, progress=progress)
                host = client.host
        finally:
            progress.close()
        result = RunResult(summary, host, ledger.path)
        if summary.invalid and not options.skip_invalid:
            result.results = _write_problems(manifest, summary.problems, out_dir)
        elif not options.dry_run:
            result.results = review.write_results(
                ledger, manifest, output_path(manifest_path, "_results.csv", out_dir))
            result.review = review.write_review(
                ledger, manifest, output_path(manifest_path, "_review.xlsx", out_dir),
                summary=summary.as_dict(), host=host)
    return result


def _make_out_dir(out_dir: Path | None) -> None:
    """Create --out-dir before anything is sent, so outputs never fail at the end."""
    if out_dir is None:
        return
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out-dir {out_dir}: {exc.strerror}") from exc


def _write_problems(manifest: Manifest, problems: Sequence[Problem], out_dir: Path | None) -> Path:
    errors: dict[int, list[str]] = {}
    for p in problems:
        if p.severity == "error" and p.row is not None:
            errors.setdefault(p.row, []).append(p.message)
    out = output_path(manifest.path, "_results.csv", out_dir)
    return write_results_csv(manifest, out, case_ids={}, errors=errors)


class OfflineResolver:
    """A resolver for ``validate`` without a server: every look-up is reported as not checked."""

    MESSAGE = "not checked without a server (pass --host or --sandbox)"

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """Raise: no server."""
        raise ResolveError(self.MESSAGE)

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """Raise: no server."""
        raise ResolveError(self.MESSAGE)

    async def find_sample(self, name: str) -> Mapping[str, Any] | None:
        """Raise: no server."""
        raise ResolveError(self.MESSAGE)


async def validate_job(
    manifest_path: Path,
    *,
    target: Target | None,
    connection: Connection,
    server: bool = False,
    out_dir: Path | None = None,
) -> ValidationResult:
    """``emg-batch validate``: every client-side check; with *server*, a dry run per family."""
    manifest = read_manifest(manifest_path)
    _make_out_dir(out_dir)
    if target is None:
        problems = await _check_all(manifest, OfflineResolver(), connection.concurrency)
        problems = [_soften(p) for p in problems]
        result = ValidationResult(problems, len(manifest))
    else:
        async with open_client(target, connection) as client:
            resolver = ApiResolver(client)
            problems = await _check_all(manifest, resolver, connection.concurrency)
            result = ValidationResult(problems, len(manifest))
            if server and not result.errors:
                result.checked_on_server = await _dry_runs(manifest, client, resolver, problems,
                                                           connection.concurrency)
    result.problems.extend(manifest.warnings)
    result.problems.sort(key=lambda p: (p.row or 0, p.severity))
    if result.errors:
        result.results = _write_problems(manifest, result.problems, out_dir)
    return result


def _soften(problem: Problem) -> Problem:
    if OfflineResolver.MESSAGE not in problem.message:
        return problem
    return Problem(problem.file, problem.row, problem.family, problem.column, problem.value,
                   problem.message, problem.hint, "warning")


async def _check_all(manifest: Manifest, resolver: Any, concurrency: int) -> list[Problem]:
    problems = list(check_manifest_wide(manifest))
    file = manifest.path.name

    async def check(family: Family) -> None:
        if not family.case_id:
            problems.extend(await check_family(family, resolver, file=file))

    await run_pool(manifest.families(), check, concurrency=max(concurrency, 16), batch=CHECK_BATCH)
    return problems


async def _dry_runs(manifest: Manifest, client: Client, resolver: ApiResolver,
                    problems: list[Problem], concurrency: int) -> int:
    """Ask the server to validate every family (``dry_run=true``), concurrently."""
    checked = 0
    file = manifest.path.name

    async def dry_run(family: Family) -> None:
        nonlocal checked
        if family.case_id:
            return
        row = family.proband.number if family.proband else None
        try:
            payload = await build_payload(family, resolver)
            await client.create_case(payload, dry_run=True)
        except BuildError as exc:
            problems.append(Problem(file, row, family.family_id, None, None, exc.message))
        except AuthError:
            raise
        except ApiError as exc:
            # the server's own words, as the official CLI reports them
            text = exc.last.message if isinstance(exc, RetriesExhausted) else exc.message
            problems.append(Problem(file, row, family.family_id, None, None, text))
        checked += 1

    await run_pool(manifest.families(), dry_run, concurrency=concurrency)
    return checked
