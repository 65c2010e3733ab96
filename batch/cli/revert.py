"""``emg-batch revert``: undo a run, its cases moved to the trash after a look at the plan."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from batch import jobs
from batch.cli.common import (
    ENVIRONMENT,
    Number,
    call,
    concurrency_option,
    fail,
    host_options,
    output_options,
    say,
    setup_logging,
    target,
    tuned,
)
from batch.errors import UsageError
from batch.outputs.status import question, render_plan, render_revert
from batch.run.revert import RevertOptions, RevertPlan

#: The most cases revert reads or moves at once.
REVERT_MAX_CONCURRENCY = 64
#: Refused without a terminal to ask on: nothing is sent.
NO_TERMINAL = ("not asking without a terminal: nothing was sent; pass --yes to move these cases "
               "to the trash, or --dry-run to only see the plan")


def interactive() -> bool:
    """Whether the user can be asked (stdin and stderr are a terminal)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def _families(value: str | None) -> frozenset[str]:
    return frozenset(f.strip() for f in (value or "").split(",") if f.strip())


@click.command(epilog=ENVIRONMENT)
@click.argument("manifest", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Ledger file (default: the manifest's, <manifest stem>.ledger.sqlite).")
@host_options
@click.option("--run", "run_id", type=Number(min=1, integer=True), default=None,
              help="Only the cases run N created (default: every run of the ledger; "
                   "`emg-batch status` shows the runs).")
@click.option("--only", metavar="FAMILY,...", default=None,
              help="Only these families (Family Ids, comma-separated).")
@click.option("--include-adopted", is_flag=True,
              help="Also cases the run found on the server and adopted (not created by it).")
@click.option("--include-moved", is_flag=True,
              help="Also cases whose status moved on since the run (delivered, finalized, a "
                   "custom status someone set).")
@click.option("--dry-run", is_flag=True, help="Read the statuses and show the plan; send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (for scripts).")
@concurrency_option(default=8, maximum=REVERT_MAX_CONCURRENCY,
                    help="Cases read or moved at once.")
@output_options
def revert_command(manifest: Path | None, ledger_path: Path | None, host: str | None,
                   sandbox: bool, tenant: str | None, run_id: int | None, only: str | None,
                   include_adopted: bool, include_moved: bool, dry_run: bool, yes: bool,
                   concurrency: int, verbose: int, quiet: bool) -> None:
    """Undo a run: move the cases its ledger created to the Emedgene trash.

    First the plan: how many cases, which, their status now (read from the server), and
    which are left alone and why; then, on a terminal, a question (--yes for scripts;
    without a terminal and without --yes nothing is sent, exit 2). Only cases a run of
    this ledger created; adopted ones with --include-adopted, ones whose status moved on
    with --include-moved. Rerun the same command to resume: nothing is sent twice.

    On stdout: nothing. On stderr: the plan, the question and what was done. With
    --quiet, the question, errors, and the summary when some cases failed.

    \b
    Examples:
      emg-batch revert cases.csv --host https://lab.emg.illumina.com --dry-run
      emg-batch revert --ledger runs/cases.sqlite --run 2 --only F7,F9 --yes
    """
    setup_logging(verbose, quiet)
    if manifest is None and ledger_path is None:
        raise click.UsageError("pass a MANIFEST or --ledger PATH")
    where = target(host, sandbox, tenant)
    assert where is not None
    rate, concurrency = tuned(where, None, concurrency)
    concurrency = min(concurrency, REVERT_MAX_CONCURRENCY)  # a tenant's may be higher
    options = RevertOptions(run=run_id, only=_families(only), include_adopted=include_adopted,
                            include_moved=include_moved, dry_run=dry_run,
                            concurrency=concurrency)

    def decide(plan: RevertPlan) -> bool:
        say(render_plan(plan), quiet=quiet)
        if dry_run or not plan.to_send or yes:
            return True
        if not interactive():
            raise UsageError(NO_TERMINAL)
        return click.confirm(question(plan), default=False, err=True)

    from batch.jobs.revert import revert_job  # the client (and aiohttp) for this command only

    summary = call(revert_job, manifest, ledger_path=ledger_path, target=where,
                   connection=jobs.Connection(rate=rate, concurrency=concurrency),
                   options=options,
                   decide=decide)
    if summary is None:
        fail("nothing was sent (answered no)", None, 2)
    say(render_revert(summary), quiet=quiet and summary.exit_code == 0)
    sys.exit(summary.exit_code)
