"""``run`` and ``validate`` as whole jobs: open what they need, work, write the outputs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch.errors import (
    ApiError,
    AuthError,
    BuildError,
    ManifestError,
    OutputError,
    RetriesExhausted,
    ServerUnreachable,
    TransientError,
    UsageError,
)
from batch.jobs.connect import (
    Connection,
    Target,
    check_ledger,
    ledger_file,
    open_bound,
    open_client,
    output_path,
)
from batch.ledger import Ledger
from batch.manifest import Family, Manifest, Problem, read_manifest
from batch.outputs import (
    check_writable,
    make_dir,
    write_results,
    write_results_csv,
    write_review,
)
from batch.payload import OfflineResolver, Resolver, build_payload, resolve
from batch.run.pool import run_pool
from batch.run.progress import Progress, SilentProgress
from batch.run.summary import RunOptions, RunSummary
from batch.run.validate import check_manifest
from batch.text import plural

if TYPE_CHECKING:
    from batch.api import Client


@dataclass(slots=True)
class RunResult:
    """What ``run`` produced."""

    summary: RunSummary
    host: str
    ledger: Path
    results: Path | None = None
    review: Path | None = None
    kept: Path | None = None
    """A results file left as it is, holding Case Ids *results* lacks (written beside)."""
    ledger_gone: bool = False
    """The ledger file was deleted (or replaced) while the run used it."""
    #: False when the run made the ledger and removed it again (nothing was recorded).
    ledger_kept: bool = True
    #: Failed and unknown steps grouped by reason (``Ledger.failure_groups``).
    failures: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class ValidationResult:
    """What ``validate`` found."""

    problems: list[Problem]
    families: int
    results: Path | None = None
    kept: Path | None = None
    """A results file left as it is, holding more Case Ids than *results* (written beside)."""
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
    on_checked: Callable[[list[Problem]], None] | None = None,
    only: Sequence[str] = (),
    include_hidden_rows: bool = False,
) -> RunResult:
    """``emg-batch run``: read, validate, run, and write the results file and review workbook.

    Before anything is sent: every output location is tried (``OutputError``, exit 3) and
    the ledger is bound to the server (``LedgerError`` when it belongs to another, exit 2).
    *sheet* names the workbook sheet to read (XLSX only); its hidden rows are refused unless
    *include_hidden_rows*. *on_checked* is given the
    manifest's problems (the file's warnings first) once validation is over, before anything
    is sent. A run that stops before sending anything (login refused, server unreachable)
    writes no results file and no workbook. An output that fails after the run says how many
    cases were created and where the ledger is. *only* names the families to work on (the
    others are left as they are; the ledger and the outputs are the whole manifest's)."""
    from batch.run import run_manifest  # the engine (and aiohttp) only for a command that runs

    manifest = read_manifest(manifest_path, sheet=sheet, include_hidden_rows=include_hidden_rows)
    chosen = choose(manifest, only)
    progress = progress or SilentProgress()

    def checked(problems: list[Problem]) -> None:
        if on_checked is not None:
            on_checked([*manifest.warnings, *problems])

    path = ledger_file(manifest_path, ledger_path, target)
    check_outputs(manifest_path, path, out_dir)
    made = not path.exists()
    with open_bound(path, target) as ledger:
        began = time.time()
        try:
            async with open_client(target, connection) as client:
                summary = await run_manifest(chosen, client=client, ledger=ledger,
                                             options=options, progress=progress,
                                             on_checked=checked)
                host = client.host
        finally:
            progress.close()
        summary.problems[:0] = manifest.warnings  # the file's own (as validate shows them)
        result = RunResult(summary, host, ledger.path)
        if summary.failed or summary.unknown:
            result.failures = ledger.failure_groups()
        try:
            _write_outputs(result, ledger, manifest, options, out_dir)
        except OutputError as exc:
            ledger.amend_exit(began, exit_code=3)  # never "done" with its outputs missing
            raise OutputError(f"{exc}; {_recorded(summary, ledger.path)}") from None
        if made and not summary.ran and not ledger.holds_work():
            ledger.discard()  # a manifest refused before anything was sent leaves no ledger
            result.ledger_kept = False
        else:
            result.ledger_gone = not ledger.on_disk()
    return result


def choose(manifest: Manifest, only: Sequence[str], limit: int | None = None) -> Manifest:
    """The families of *manifest* to work on: those named in *only* (all when empty), the
    first *limit* of them; ``UsageError`` for names the manifest does not have."""
    chosen = manifest
    if only:
        try:
            chosen = manifest.select(only)
        except KeyError as exc:
            raise UsageError(f"--only: {manifest.source} has no family {exc.args[0]}") from None
    if limit is not None:
        chosen = chosen.select(chosen.family_ids[:limit])
    return chosen


def _recorded(summary: RunSummary, ledger: Path) -> str:
    """What a run whose outputs failed did all the same, and where it is recorded."""
    made = f"{plural(summary.created, 'case')} created" if summary.created else "no case created"
    return (f"the run itself ended ({made}, {plural(summary.failed, 'family')} failed), "
            f"and the ledger {ledger} records every step: rerunning the same command writes "
            "the outputs again and creates nothing twice")


def check_outputs(manifest: Path, ledger: Path, out_dir: Path | None) -> None:
    """``OutputError`` naming the first location a run could not write: the ledger (and its
    folder), ``--out-dir``, the results file, the review workbook. Folders are made."""
    check_writable(ledger, in_place=True)
    if out_dir is not None:
        make_dir(out_dir)
    for suffix in ("_results.csv", "_review.xlsx"):
        check_writable(output_path(manifest, suffix, out_dir))


def _write_outputs(result: RunResult, ledger: Ledger, manifest: Manifest, options: RunOptions,
                   out_dir: Path | None) -> None:
    summary = result.summary
    intended = output_path(manifest.path, "_results.csv", out_dir)
    if summary.invalid and not summary.ran:
        result.results = _write_problems(manifest, summary.problems, out_dir)
    elif summary.stopped is not None and not summary.ran:
        return  # stopped before sending (login, server): nothing to show but the reason
    elif not options.dry_run:
        result.results = write_results(ledger, manifest, intended)
        result.review = write_review(
            ledger, manifest, output_path(manifest.path, "_review.xlsx", out_dir),
            summary=summary.as_dict(), host=result.host)
    if result.results is not None and result.results != intended:
        result.kept = intended


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
    only: Sequence[str] = (),
    limit: int | None = None,
    include_hidden_rows: bool = False,
) -> ValidationResult:
    """``emg-batch validate``: every client-side check; with *server*, a dry run per family.

    *sheet* names the workbook sheet to read; its hidden rows are refused unless
    *include_hidden_rows*. *only* and *limit* choose the families checked (checks across
    families still see every row)."""
    manifest = choose(read_manifest(manifest_path, sheet=sheet,
                                    include_hidden_rows=include_hidden_rows), only, limit)
    if out_dir is not None:
        make_dir(out_dir)
    if server:  # the cases of the manifest's ledger are on its server only
        check_ledger(ledger_file(manifest_path, None, target), target)
    if target is None:
        problems = await _check_all(manifest, OfflineResolver(), connection.concurrency)
        result = ValidationResult([_soften(p) for p in problems], len(manifest))
    else:
        try:
            result = await _check_on(target, connection, manifest, server=server)
        except* (RetriesExhausted, TransientError) as group:
            first = group.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise ServerUnreachable(f"the server did not answer ({first}); nothing was "
                                    "checked on it") from None
    result.problems.extend(manifest.warnings)
    result.problems.sort(key=lambda p: (p.row or 0, p.severity))
    if result.errors:
        result.results = _problems_file(manifest, result, out_dir)
    return result


async def _check_on(target: Target, connection: Connection, manifest: Manifest, *,
                    server: bool) -> ValidationResult:
    """Every check that needs *target*: look-ups, and with *server* a dry run per family."""
    async with open_client(target, connection) as client:
        resolver = resolve.for_client(client)
        problems = await _check_all(manifest, resolver, connection.concurrency)
        result = ValidationResult(problems, len(manifest))
        if server and not result.errors:
            result.checked_on_server = await _dry_runs(manifest, client, resolver, problems,
                                                       connection.concurrency)
    return result


def _problems_file(manifest: Manifest, result: ValidationResult, out_dir: Path | None) -> Path:
    """The results file with the errors; when it cannot be written, the problems still go
    out, with why the file is missing (a ``ManifestError``: exit 2)."""
    try:
        written = _write_problems(manifest, result.problems, out_dir)
    except OutputError as exc:
        raise ManifestError(
            f"{manifest.source}: {plural(len(result.errors), 'error')}; the results file with "
            f"them was not written: {exc}", problems=list(result.problems)) from None
    intended = output_path(manifest.path, "_results.csv", out_dir)
    if written != intended:
        result.kept = intended
    return written


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
