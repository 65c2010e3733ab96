"""The command line: a thin layer that parses options, calls the library, maps errors.

Exit codes: 0 all done; 1 finished, some families failed or unknown; 2 usage, configuration or
manifest error, nothing sent; 3 stopped early (--max-failures, auth refused); 130 Ctrl-C.
Data (``--json``, the status report) goes to stdout; progress, summaries, the paths of written
files, warnings and errors go to stderr, and ``--quiet`` keeps only the errors (and the summary
of a command that did not succeed). Expected errors are one line plus a hint, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from batch import jobs, outputs
from batch.cli.common import (
    ENVIRONMENT,
    Number,
    call,
    call_sync,
    concurrency_option,
    file_output_options,
    host_options,
    output_options,
    say,
    settings_record,
    setup_logging,
    target,
    tuned,
)
from batch.cli.doctor import doctor_command
from batch.cli.pull import listen_command, pull_group
from batch.cli.revert import revert_command
from batch.cli.sandbox import sandbox_command
from batch.manifest import Problem
from batch.run.progress import for_terminal
from batch.run.summary import DEFAULT_CONCURRENCY, IfExists, RunOptions
from batch.text import plural


@click.group(epilog=ENVIRONMENT)
@click.version_option(package_name="emg-batch")
def main() -> None:
    """Bulk, rate-limited, resumable case work on Illumina Emedgene.

    \b
    Try it with no account:
      emg-batch run inputs/example.csv --sandbox
    """


main.add_command(sandbox_command, "sandbox")
main.add_command(pull_group, "pull")
main.add_command(listen_command, "listen")
main.add_command(doctor_command, "doctor")
main.add_command(revert_command, "revert")


# -- run ---------------------------------------------------------------------------------------

sheet_option = click.option(
    "--sheet", metavar="NAME", default=None,
    help="XLSX, XLS, ODS: the sheet to read (default: the first visible sheet with the "
         "official header; a hidden sheet is read only when named).")
hidden_rows_option = click.option(
    "--include-hidden-rows", is_flag=True,
    help="XLSX: read hidden (or filtered-out) rows as data; without it they are refused.")


def selection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--only / --limit: some of the manifest's families, on the manifest's own ledger."""
    fn = click.option("--limit", type=Number(min=1, integer=True), default=None,
                      help="At most N families (in file order; in a run, N families not done "
                           "yet): a first small batch, then the rest.")(fn)
    return click.option("--only", "only", multiple=True, metavar="FAMILY[,FAMILY...]",
                        help="Only these families (repeatable); the others are left as they "
                             "are.")(fn)


def _families(only: tuple[str, ...]) -> list[str]:
    """The family ids of --only options (comma-separated, repeatable)."""
    return [name.strip() for item in only for name in item.split(",") if name.strip()]


@main.command(epilog=ENVIRONMENT)
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@host_options
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Ledger file (default: <manifest stem>.ledger.sqlite next to the manifest; "
                   "with --sandbox, <manifest stem>.sandbox.ledger.sqlite).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where results and review files go (default: next to the manifest).")
@concurrency_option(default=DEFAULT_CONCURRENCY, help="Families in flight at once.")
@click.option("--rate", type=Number(min=0.01), default=None,
              help="At most R requests per second, evenly spaced (default: adapt to 429s).")
@click.option("--max-failures", type=Number(min=1, integer=True), default=None,
              help="Stop after N failed families (exit 3).")
@click.option("--timeout", type=Number(min=1), default=60.0, show_default=True,
              help="Seconds one request may take, from sending to the last byte of its "
                   "answer (each retry gets as long again).")
@click.option("--dry-run", is_flag=True, help="Validate, look up and plan; send nothing.")
@click.option("--skip-invalid", is_flag=True,
              help="Send the valid families even when others are invalid.")
@click.option("--if-exists", type=click.Choice(["stop", "adopt", "create"]), default="stop",
              show_default=True,
              help="When a family's case is already on the server (found by its proband's "
                   "sample before the first create): stop that family, adopt the case, or "
                   "create another (no look-up).")
@click.option("--resend-unknown", "resend_unknown", multiple=True,
              type=click.Choice(["preset_group"]),
              help="Send again a preset group whose answer was lost, after checking in "
                   "Emedgene that it is not on the case.")
@click.option("--recreate-reverted", is_flag=True,
              help="Create again the families whose cases `emg-batch revert` moved to the "
                   "trash (by default they are skipped, with a warning).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as JSON on stdout instead of lines on stderr.")
@sheet_option
@hidden_rows_option
@selection_options
@output_options
def run(manifest: Path, host: str | None, sandbox: bool, tenant: str | None,
        ledger_path: Path | None,
        out_dir: Path | None, concurrency: int, rate: float | None, max_failures: int | None,
        timeout: float, dry_run: bool, skip_invalid: bool, if_exists: IfExists,
        resend_unknown: tuple[str, ...], recreate_reverted: bool, as_json: bool,
        sheet: str | None, include_hidden_rows: bool, only: tuple[str, ...],
        limit: int | None, verbose: int, quiet: bool) -> None:
    """Create (and update) the cases of MANIFEST; rerun the same command to resume.

    On stdout: only the --json summary. On stderr: progress, the manifest's errors and
    warnings (a count and the first 5), the summary and the files written (results, review,
    ledger). With --quiet, the errors only, and the summary when the run did not succeed.

    \b
    Examples:
      emg-batch run inputs/example.csv --sandbox
      emg-batch run cases.csv --host https://lab.emg.illumina.com --rate 10
      emg-batch run cases.parquet --ledger runs/cases.sqlite --max-failures 20
    """
    setup_logging(verbose, quiet)
    where = target(host, sandbox, tenant)
    assert where is not None
    rate, concurrency = tuned(where, rate, concurrency)
    options = RunOptions(concurrency=concurrency, max_failures=max_failures, dry_run=dry_run,
                         skip_invalid=skip_invalid, if_exists=if_exists,
                         resend_unknown=frozenset(resend_unknown), handle_signals=True,
                         recreate_reverted=recreate_reverted, settings=settings_record(where),
                         limit=limit)
    connection = jobs.Connection(rate=rate, concurrency=concurrency, timeout=timeout)
    progress = for_terminal(quiet=quiet)
    told: list[bool] = []

    def checked(problems: list[Problem]) -> None:  # before anything is sent
        told.append(True)
        for line in outputs.render_problems(problems, quiet=quiet,
                                            warnings_shown=RUN_WARNINGS_SHOWN):
            if quiet:  # errors only, and no progress to print them above
                click.echo(line, err=True)
            else:
                progress.note(line)

    result = call(jobs.run_job, manifest, target=where, connection=connection, options=options,
                  ledger_path=ledger_path, out_dir=out_dir, progress=progress, sheet=sheet,
                  on_checked=checked, only=_families(only),
                  include_hidden_rows=include_hidden_rows)
    summary = result.summary
    if not told:
        _print_problems(summary.problems, quiet=quiet, warnings_shown=RUN_WARNINGS_SHOWN)
    if as_json:
        data = summary.as_dict()
        data.update(host=result.host, ledger=str(result.ledger) if result.ledger_kept else None,
                    results=str(result.results) if result.results else None,
                    review=str(result.review) if result.review else None,
                    kept=str(result.kept) if result.kept else None,
                    ledger_deleted=result.ledger_gone)
        click.echo(json.dumps(data, indent=2))
    else:
        files = {"results": result.results, "review": result.review,
                 "ledger": result.ledger if result.ledger_kept and not result.ledger_gone
                 else None}
        say(outputs.render_summary(summary, files=files, failures=result.failures),
            quiet=quiet and summary.exit_code == 0)
        _say_kept(result.kept, quiet=quiet)
    if result.ledger_gone:
        click.echo(LEDGER_GONE.format(ledger=result.ledger), err=True)
    sys.exit(summary.exit_code)


#: Said (even with --quiet or --json) when the ledger's file went away during the run.
LEDGER_GONE = ("warning: the ledger {ledger} was deleted during the run: what this run did is "
               "not recorded anywhere now; rerun with --if-exists adopt to take the cases it "
               "created back from the server")


def _say_kept(kept: Path | None, *, quiet: bool) -> None:
    """The line about a results file left as it is (its Case Ids are a run's record)."""
    if kept is not None:
        say(f"kept: {kept} holds Case Ids these results lack; left as it is", quiet=quiet)


#: Warnings ``run`` shows (after a count); ``validate`` shows them all.
RUN_WARNINGS_SHOWN = 5


def _print_problems(problems: list[Problem], *, quiet: bool,
                    warnings_shown: int | None = None) -> None:
    for line in outputs.render_problems(problems, quiet=quiet, warnings_shown=warnings_shown):
        click.echo(line, err=True)


# -- validate --------------------------------------------------------------------------------


@main.command(epilog=ENVIRONMENT)
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--server", is_flag=True, help="Also ask the server to check every family (dry run).")
@host_options
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the results file goes (default: next to the manifest).")
@concurrency_option(default=DEFAULT_CONCURRENCY,
                    help="Families checked at once (look-ups, dry runs).")
@click.option("--rate", type=Number(min=0.01), default=None,
              help="At most R requests per second (default: adapt).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the counts and every problem as JSON on stdout.")
@sheet_option
@hidden_rows_option
@selection_options
@output_options
def validate(manifest: Path, server: bool, host: str | None, sandbox: bool,
             tenant: str | None, out_dir: Path | None, concurrency: int,
             rate: float | None, as_json: bool, sheet: str | None, include_hidden_rows: bool,
             only: tuple[str, ...], limit: int | None, verbose: int, quiet: bool) -> None:
    """Check MANIFEST and print every problem; send nothing.

    Without --host or --sandbox, look-ups (storages, BaseSpace, `existing`) are skipped.

    On stdout: only the --json report. On stderr: every error and warning, the counts and the
    results file written for errors. With --quiet, the errors only, and the counts when there
    are errors.

    \b
    Examples:
      emg-batch validate cases.csv
      emg-batch validate cases.csv --server --host https://lab.emg.illumina.com
    """
    setup_logging(verbose, quiet)
    where = target(host, sandbox, tenant, needed=server)
    rate, concurrency = tuned(where, rate, concurrency)
    connection = jobs.Connection(rate=rate, concurrency=concurrency)
    result = call(jobs.validate_job, manifest, target=where, connection=connection,
                  server=server, out_dir=out_dir, sheet=sheet, only=_families(only),
                  limit=limit, include_hidden_rows=include_hidden_rows)
    _print_problems(result.problems, quiet=quiet)
    errors = len(result.errors)
    warnings = len(result.problems) - errors
    if as_json:
        click.echo(json.dumps({
            "manifest": str(manifest), "families": result.families, "errors": errors,
            "warnings": warnings, "checked_on_server": result.checked_on_server,
            "problems": [str(p) for p in result.problems],
            "results": str(result.results) if result.results else None,
            "kept": str(result.kept) if result.kept else None,
            "exit_code": result.exit_code}, indent=2))
        sys.exit(result.exit_code)
    line = (f"{manifest.name}: {plural(result.families, 'family')}, "
            f"{plural(errors, 'error')}, {plural(warnings, 'warning')}")
    if result.checked_on_server:
        line += f", {result.checked_on_server} checked by the server"
    if result.results:
        line += f"\nresults: {result.results}"
    say(line, quiet=quiet and result.exit_code == 0)
    _say_kept(result.kept, quiet=quiet)
    sys.exit(result.exit_code)


# -- status and export -----------------------------------------------------------------------


@main.command()
@click.argument("manifest", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Ledger file (default: the manifest's).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@output_options
def status(manifest: Path | None, ledger_path: Path | None, as_json: bool, verbose: int,
           quiet: bool) -> None:
    """Where a run stands: counts by step and state, failures by reason, the last run.

    On stdout: the report (text, or JSON with --json), with or without --quiet; on stderr,
    only errors.

    \b
    Examples:
      emg-batch status inputs/example.csv
      emg-batch status --ledger runs/cases.sqlite --json
    """
    setup_logging(verbose, quiet)
    report = call_sync(jobs.status_job, manifest, ledger_path)
    click.echo(json.dumps(report, indent=2, default=str) if as_json
               else outputs.render_status(report))


@main.command()
@click.argument("manifest", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Ledger file (default: the manifest's).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="FILE.xlsx (review workbook), FILE.csv or FILE.parquet.")
@click.option("--force", is_flag=True,
              help="Replace a results file that holds Case Ids (never a manifest or a ledger).")
@file_output_options
def export(manifest: Path | None, ledger_path: Path | None, out: Path, force: bool,
           verbose: int, quiet: bool) -> None:
    """Write the per-family results of a ledger to a spreadsheet or Parquet file.

    Nothing on stdout (the data is the file); on stderr, the file written, or with --quiet
    only errors. --out is never a manifest the ledger's runs read, nor the ledger; a results
    file holding Case Ids is replaced only with --force (exit 2 otherwise, nothing written).

    \b
    Examples:
      emg-batch export inputs/example.csv --out review.xlsx
      emg-batch export --ledger runs/cases.sqlite --out cases.parquet
    """
    setup_logging(verbose, quiet)
    written = call_sync(jobs.export_job, manifest, ledger_path, out, force=force)
    say(f"wrote {written}", quiet=quiet)


@main.command()
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where the templates go.")
@click.option("--force", is_flag=True, help="Replace template files that are already there.")
@file_output_options
def template(out_dir: Path, force: bool, verbose: int, quiet: bool) -> None:
    """Write empty manifests to start from: an official batch CSV and an update manifest.

    Nothing on stdout (the data is the files); on stderr, the files written, or with --quiet
    only errors. A template already there (perhaps filled in) is replaced only with --force
    (without it: exit 2, nothing written).

    \b
    Example:
      emg-batch template --out-dir manifests/
    """
    setup_logging(verbose, quiet)
    for path in call_sync(outputs.write_template, out_dir, force=force):
        say(f"wrote {path}", quiet=quiet)
