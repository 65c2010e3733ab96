"""``run`` and ``validate`` as whole jobs: open what they need, work, write the outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch.api import Client
from batch.errors import ApiError, AuthError, BuildError, RetriesExhausted
from batch.jobs.connect import Connection, Target, open_client, open_ledger, output_path
from batch.manifest import Family, Manifest, Problem, read_manifest
from batch.outputs import make_dir, write_results, write_results_csv, write_review
from batch.payload import OfflineResolver, Resolver, build_payload, resolve
from batch.run import RunOptions, RunSummary, run_manifest
from batch.run.pool import run_pool
from batch.run.progress import Progress, SilentProgress
from batch.run.validate import check_manifest


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


async def run_job(
    manifest_path: Path,
    *,
    target: Target,
    connection: Connection,
    options: RunOptions,
    ledger_path: Path | None = None,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    sheet: str | None = None,
) -> RunResult:
    """``emg-batch run``: read, validate, run, and write the results file and review workbook.

    *sheet* names the workbook sheet to read (XLSX only)."""
    manifest = read_manifest(manifest_path, sheet=sheet)
    progress = progress or SilentProgress()
    if out_dir is not None:
        make_dir(out_dir)  # before anything is sent, so outputs never fail at the end
    with open_ledger(manifest_path, ledger_path) as ledger:
        try:
            async with open_client(target, connection) as client:
                summary = await run_manifest(manifest, client=client, ledger=ledger,
                                             options=options, progress=progress)
                host = client.host
        finally:
            progress.close()
        result = RunResult(summary, host, ledger.path)
        if summary.invalid and not summary.ran:
            result.results = _write_problems(manifest, summary.problems, out_dir)
        elif not options.dry_run:
            result.results = write_results(
                ledger, manifest, output_path(manifest_path, "_results.csv", out_dir))
            result.review = write_review(
                ledger, manifest, output_path(manifest_path, "_review.xlsx", out_dir),
                summary=summary.as_dict(), host=host)
    return result


def _write_problems(manifest: Manifest, problems: Sequence[Problem], out_dir: Path | None) -> Path:
    errors: dict[int, list[str]] = {}
    for p in problems:
        if p.severity == "error" and p.row is not None:
            errors.setdefault(p.row, []).append(p.message)
    out = output_path(manifest.path, "_results.csv", out_dir)
    return write_results_csv(manifest, out, case_ids={}, errors=errors)


async def validate_job(
    manifest_path: Path,
    *,
    target: Target | None,
    connection: Connection,
    server: bool = False,
    out_dir: Path | None = None,
    sheet: str | None = None,
) -> ValidationResult:
    """``emg-batch validate``: every client-side check; with *server*, a dry run per family.

    *sheet* names the workbook sheet to read (XLSX only)."""
    manifest = read_manifest(manifest_path, sheet=sheet)
    if out_dir is not None:
        make_dir(out_dir)
    if target is None:
        problems = await _check_all(manifest, OfflineResolver(), connection.concurrency)
        result = ValidationResult([_soften(p) for p in problems], len(manifest))
    else:
        async with open_client(target, connection) as client:
            resolver = resolve.for_client(client)
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


async def _check_all(manifest: Manifest, resolver: Resolver, concurrency: int) -> list[Problem]:
    return (await check_manifest(manifest, resolver, concurrency=concurrency)).problems


def _soften(problem: Problem) -> Problem:
    """A look-up that could not be made offline is a warning, not an error."""
    if OfflineResolver.MESSAGE not in problem.message:
        return problem
    return Problem(file=problem.file, row=problem.row, family=problem.family,
                   column=problem.column, value=problem.value, message=problem.message,
                   hint=problem.hint, severity="warning")


async def _dry_runs(manifest: Manifest, client: Client, resolver: Resolver,
                    problems: list[Problem], concurrency: int) -> int:
    """Ask the server to validate every family (``dry_run=true``), concurrently."""
    checked = 0
    file = manifest.source

    async def dry_run(family: Family) -> None:
        nonlocal checked
        if family.case_id:
            return
        row = family.proband.number if family.proband else None
        try:
            payload = await build_payload(family, resolver)
            await client.create_case(payload, dry_run=True)
        except BuildError as exc:
            problems.append(Problem(file=file, row=row, family=family.family_id,
                                    message=exc.message))
        except AuthError:
            raise
        except ApiError as exc:
            # the server's own words, as the official CLI reports them
            text = exc.last.message if isinstance(exc, RetriesExhausted) else exc.message
            problems.append(Problem(file=file, row=row, family=family.family_id, message=text))
        checked += 1

    await run_pool(manifest.families(), dry_run, concurrency=concurrency)
    return checked
