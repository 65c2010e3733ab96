"""``emg-batch pull`` (finalized, candidates, info) and ``emg-batch listen``: thin click layers
over :mod:`batch.pull` and :mod:`batch.listen`, on the same client options as ``run``.

Exit codes: 0 all done; 1 some cases failed; 2 usage or configuration error; 3 auth refused;
130 interrupted.

Streams: the data is the files written (and ``--json``, ``listen``'s webhook URL and
``--show-events``) on stdout; the per-case errors, the summary, the paths written and the
listener's messages on stderr; ``--quiet`` keeps the errors only (and the summary when some
case failed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from batch import jobs
from batch.api import is_loopback
from batch.cli.common import (
    Number,
    call,
    call_sync,
    concurrency_option,
    fail,
    host_options,
    output_options,
    say,
    setup_logging,
    target,
    tuned,
)
from batch.errors import UsageError, truncate
from batch.text import plural, quoted

if TYPE_CHECKING:  # the pull modules (and aiohttp) are imported by the commands that run
    from batch.jobs.pull import Puller
    from batch.pull import HookAuth, ListenerStats, PullResult, TableResult

__all__ = ["listen_command", "pull_group"]

T = TypeVar("T")

#: What --timeout means for a command that downloads reports, and for one that does not.
TIMEOUT_HELP = ("Seconds one request may take, from sending to the last byte of its answer; a "
                "report download longer while data keeps coming (128 KB/s or more).")
TABLE_TIMEOUT_HELP = ("Seconds one request may take, from sending to the last byte of its "
                      "answer (each retry gets as long again).")


def _client_options(fn: Callable[..., Any], *, timeout_help: str = TIMEOUT_HELP,
                    ) -> Callable[..., Any]:
    """--host/--sandbox, --concurrency, --rate, --timeout, -v, -q."""
    fn = output_options(fn)
    for option in reversed((
        concurrency_option(default=8, help="Cases in flight at once."),
        click.option("--rate", type=Number(min=0.01), default=None,
                     help="At most R requests per second, evenly spaced (default: adapt)."),
        click.option("--timeout", type=Number(min=1), default=60.0, show_default=True,
                     help=timeout_help),
    )):
        fn = option(fn)
    return host_options(fn)


# -- pull --------------------------------------------------------------------------------------


@click.group("pull")
def pull_group() -> None:
    """Pull data out of Emedgene in bulk: finalized cases and reports, tagged variants, info,
    which case holds a sample."""


@pull_group.command("finalized")
@click.option("--since", default="24h", show_default=True,
              help="Status changed since: a duration (24h, 7d, 30m) or an ISO date/datetime.")
@click.option("--status", "statuses", multiple=True, metavar="STATUS",
              help="Status to list (repeatable; default: finalized).")
@click.option("--reports", "reports", multiple=True, metavar="TYPE",
              help="Report types to download: pdf, json, ... or all (repeatable or "
                   "comma list; default: pdf).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory: DIR/<case>/<type>-<id>.<ext>, DIR/cases.xlsx and DIR/cases.csv.")
@click.option("--page-size", type=Number(1, 100, integer=True), default=100,
              show_default=True, help="Cases per listing page.")
@click.option("--report-id", "report_ids", multiple=True, metavar="CASE:TYPE:ID",
              help="A report to download, for tenants that do not list report ids "
                   "(repeatable); the case is pulled even when not listed.")
@click.option("--report-ids", "report_id_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A CSV of reports to download: columns Case Id, Report Type, Report Id.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as JSON on stdout instead of lines on stderr.")
@_client_options
def finalized(since: str, statuses: Sequence[str], reports: Sequence[str], out: Path,
              page_size: int, report_ids: Sequence[str], report_id_files: Sequence[Path],
              as_json: bool, host: str | None, sandbox: bool, tenant: str | None,
              concurrency: int, rate: float | None, timeout: float, verbose: int,
              quiet: bool) -> None:
    """Download the reports of the cases finalized since --since; rerun to resume.

    On stdout: only the --json summary. On stderr: each case that failed, the counts and the
    two tables written (--out/cases.xlsx, cases.csv); with --quiet, the failed cases only,
    and the counts when some case failed.

    \b
    Examples:
      emg-batch pull finalized --since 24h --reports pdf --out reports/
      emg-batch pull finalized --since 2024-02-01 --reports pdf,json --out reports/
      emg-batch pull finalized --report-id EMG100000001:pdf:700001 --out reports/
    """
    from batch.pull import FINALIZED, FinalizedOptions, parse_report_ids, parse_report_types

    setup_logging(verbose, quiet)
    try:
        options = FinalizedOptions(
            out=out, since=_since(since), statuses=tuple(statuses) or (FINALIZED,),
            report_types=parse_report_types(reports or ("pdf",)), concurrency=concurrency,
            page_size=page_size, report_ids=parse_report_ids(report_ids, report_id_files))
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    where = target(host, sandbox, tenant)
    rate, concurrency = tuned(where, rate, concurrency)
    options = dataclasses.replace(options, concurrency=concurrency)
    connection = jobs.Connection(rate=rate, concurrency=concurrency, timeout=timeout)
    result = call(jobs.finalized_job, where, connection, options)
    _print_pull(result, as_json=as_json, quiet=quiet)
    sys.exit(result.exit_code)


def _since(value: str) -> str:
    from batch.pull import parse_since

    try:
        return parse_since(value)
    except OverflowError:  # a duration beyond the calendar (99999999999d)
        raise click.BadParameter(f"{quoted(value.strip())} reaches back before the year 1",
                                 param_hint="'--since'") from None


def _print_pull(result: PullResult, *, as_json: bool, quiet: bool) -> None:
    for case in result.cases:
        if case.error:
            click.echo(f"{case.case}: {case.error}", err=True)
    if as_json:
        click.echo(json.dumps({
            "cases": len(result.cases), "downloaded": result.downloaded,
            "already_present": result.present, "failed": result.failed,
            "errors": {c.case: c.error for c in result.cases if c.error},
            "xlsx": str(result.xlsx), "csv": str(result.csv)}, indent=2))
        return
    say(f"done: {plural(len(result.cases), 'case')}: downloaded "
        f"{plural(result.downloaded, 'report')}, already present {result.present}, failed "
        f"{result.failed}\ntable: {result.xlsx}\ntable: {result.csv}",
        quiet=quiet and result.exit_code == 0)


def _case_names(manifest: Path | None, cases: Sequence[str], ledger: Path | None,
                source: Path | None) -> list[str]:
    given = [manifest is not None, bool(cases), ledger is not None]
    if sum(given) != 1:
        raise click.UsageError("name the cases one way: MANIFEST, --cases EMG1,EMG2 or "
                               "--ledger PATH")
    from batch.pull import cases_from_ledger, cases_from_manifest, split_cases

    if manifest is not None:
        names = call_sync(cases_from_manifest, manifest, source)
    elif ledger is not None:
        names = call_sync(cases_from_ledger, ledger)
    else:
        names = split_cases(cases)
    if not names:
        fail("no case names found (no Case Id, and no case recorded in the ledger)", None, 2)
    return names


def _table_source(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Which cases and where the table goes (listed first in --help), then the client's
    options."""
    fn = _client_options(fn, timeout_help=TABLE_TIMEOUT_HELP)
    for option in reversed((
        click.argument("manifest", required=False,
                       type=click.Path(exists=True, dir_okay=False, path_type=Path)),
        click.option("--cases", multiple=True, metavar="EMG1,EMG2",
                     help="Case names (repeatable or comma list)."),
        click.option("--ledger", "ledger_path",
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Every case recorded in this ledger."),
        click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="FILE.xlsx, FILE.csv or FILE.parquet."),
    )):
        fn = option(fn)
    return fn


def _run_table(puller: Puller, manifest: Path | None, cases: Sequence[str],
               ledger_path: Path | None, out: Path, host: str | None, sandbox: bool,
               tenant: str | None, concurrency: int, rate: float | None, timeout: float,
               verbose: int, quiet: bool) -> NoReturn:
    from batch.jobs.pull import cases_ledger

    setup_logging(verbose, quiet)
    if out.suffix.lower() not in (".xlsx", ".csv", ".parquet"):
        raise click.UsageError("--out must end in .xlsx, .csv or .parquet")
    where = target(host, sandbox, tenant)
    rate, concurrency = tuned(where, rate, concurrency)
    source = cases_ledger(manifest, ledger_path, where)
    names = _case_names(manifest, cases, ledger_path, source)
    connection = jobs.Connection(rate=rate, concurrency=concurrency, timeout=timeout)
    result = call(jobs.table_job, puller, where, connection, names, out, ledger=source,
                  manifest=manifest)
    for row in result.rows:
        if row.get("error"):
            click.echo(f"{row['case']}: {row['error']}", err=True)
    say(f"done: {plural(len(names), 'case')}, {plural(len(result.rows), 'row')}, failed "
        f"{len(result.failed)}\nwrote {result.out}", quiet=quiet and result.exit_code == 0)
    sys.exit(result.exit_code)


@pull_group.command("candidates")
@_table_source
def candidates(manifest: Path | None, cases: Sequence[str], ledger_path: Path | None, out: Path,
               host: str | None, sandbox: bool, tenant: str | None, concurrency: int,
               rate: float | None, timeout: float, verbose: int, quiet: bool) -> None:
    """The tagged variants of many cases in one table, with each case's info alongside.

    Nothing on stdout (the data is the --out file). On stderr: each case that failed, the
    counts and the file written; with --quiet, the failed cases only, and the counts when
    some case failed.

    \b
    Examples:
      emg-batch pull candidates cases.csv --out variants.xlsx
      emg-batch pull candidates --cases EMG100000001,EMG100000002 --out variants.parquet
      emg-batch pull candidates --ledger cases.ledger.sqlite --out variants.csv
    """
    from batch.pull import pull_candidates

    _run_table(pull_candidates, manifest, cases, ledger_path, out, host, sandbox, tenant,
               concurrency, rate, timeout, verbose, quiet)


@pull_group.command("info")
@_table_source
def info(manifest: Path | None, cases: Sequence[str], ledger_path: Path | None, out: Path,
         host: str | None, sandbox: bool, tenant: str | None, concurrency: int,
         rate: float | None, timeout: float, verbose: int, quiet: bool) -> None:
    """Case info (status, creation time, creator, last update) of many cases in one table.

    Nothing on stdout (the data is the --out file). On stderr: each case that failed, the
    counts and the file written; with --quiet, the failed cases only, and the counts when
    some case failed.

    \b
    Examples:
      emg-batch pull info cases.csv --out info.xlsx
      emg-batch pull info --cases EMG100000001,EMG100000002 --out info.csv
    """
    from batch.pull import pull_info

    _run_table(pull_info, manifest, cases, ledger_path, out, host, sandbox, tenant, concurrency,
               rate, timeout, verbose, quiet)


@pull_group.command("samples")
@click.argument("manifest", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--samples", "samples", multiple=True, metavar="S1,S2",
              help="Sample names (repeatable or comma list).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="FILE.xlsx, FILE.csv or FILE.parquet.")
@_client_options
def samples_command(manifest: Path | None, samples: Sequence[str], out: Path, host: str | None,
                    sandbox: bool, tenant: str | None, concurrency: int, rate: float | None,
                    timeout: float, verbose: int, quiet: bool) -> None:
    """Which case holds each sample: one row per sample and case (its type, status and
    creation time), and a row for a sample in no case.

    Samples come from MANIFEST (every BioSample Name) or --samples. Each is looked up as
    run looks up a proband before its first create.

    Nothing on stdout (the data is the --out file). On stderr: each sample whose look-up
    failed, the counts and the file written; with --quiet, the failed samples only, and the
    counts when some failed.

    \b
    Examples:
      emg-batch pull samples cases.csv --out samples.xlsx
      emg-batch pull samples --samples NA12878,NA12891 --out samples.csv
    """
    from batch.pull import pull_samples, samples_from_manifest, split_cases

    setup_logging(verbose, quiet)
    if out.suffix.lower() not in (".xlsx", ".csv", ".parquet"):
        raise click.UsageError("--out must end in .xlsx, .csv or .parquet")
    if (manifest is not None) == bool(samples):
        raise click.UsageError("name the samples one way: MANIFEST or --samples S1,S2")
    names = call_sync(samples_from_manifest, manifest) if manifest else split_cases(samples)
    if not names:
        fail("no sample names found (no BioSample Name in the manifest)", None, 2)
    where = target(host, sandbox, tenant)
    rate, concurrency = tuned(where, rate, concurrency)
    connection = jobs.Connection(rate=rate, concurrency=concurrency, timeout=timeout)
    result = call(jobs.table_job, pull_samples, where, connection, names, out)
    for row in result.rows:
        if row.get("error"):
            click.echo(f"{row['sample']}: {row['error']}", err=True)
    say(_samples_done(names, result), quiet=quiet and result.exit_code == 0)
    sys.exit(result.exit_code)


def _samples_done(names: Sequence[str], result: TableResult) -> str:
    held = {str(r["sample"]) for r in result.rows if r.get("case")}
    none = {str(r["sample"]) for r in result.rows if r.get("cases") == 0}
    cases = {str(r["case"]) for r in result.rows if r.get("case")}
    return (f"done: {plural(len(names), 'sample')}: {len(held)} in "
            f"{plural(len(cases), 'case')}, {len(none)} in none, failed {len(result.failed)}"
            f"\nwrote {result.out}")


# -- listen ------------------------------------------------------------------------------------


def _ready(auth: HookAuth, stats: ListenerStats, quiet: bool,
           poll: float | None) -> Callable[[str], None]:
    """What the listener says once when it is bound: where (stderr), and the URL to give the
    sender (its data, on stdout); without a port, how often it reads the listing."""

    from batch.pull import SIGNATURE_HEADER
    from batch.pull.hooks import SECRET_ENV, TOKEN_ENV

    def ready(url: str) -> None:
        if poll is not None:
            say(f"following status changes through the case listing every {poll:g} s"
                f"{'' if url else ' (Ctrl-C to stop)'}", quiet=quiet)
        if not url:
            _say_ledger(stats, quiet)
            return
        base = url[: -len(auth.path)]
        say(f"listening for webhooks at {base} (Ctrl-C to stop)", quiet=quiet)
        click.echo(f"webhook URL for the sender: "
                   f"{url if auth.generated else f'{base}/hooks/${TOKEN_ENV}'}")
        if auth.generated:
            say(f"  (a new token on every start: set {TOKEN_ENV} to keep the URL)", quiet=quiet)
        if auth.secret is not None:
            say(f"bodies must be signed: {SIGNATURE_HEADER}: sha256=<HMAC-SHA256 of the body "
                f"with ${SECRET_ENV}, hex>; only a relay of your own can sign, Emedgene's "
                f"sender cannot (unset {SECRET_ENV} when Emedgene posts here directly)",
                quiet=quiet)
        _say_ledger(stats, quiet)

    return ready


def _say_ledger(stats: ListenerStats, quiet: bool) -> None:
    counts = stats.at_start
    if stats.retried:
        say(f"a fresh set of attempts for {plural(stats.retried, 'failed event')}",
            quiet=quiet)
    if counts.get("pending"):
        say(f"resuming {plural(counts['pending'], 'event')} recorded but not yet handled",
            quiet=quiet)
    if counts.get("failed"):
        say(f"{plural(counts['failed'], 'event')} failed earlier (--show-events lists them, "
            "--retry-failed tries them again)", quiet=quiet)


def _show_events(ledger_path: Path) -> NoReturn:
    from batch.jobs.pull import events_view

    counts, failed = call_sync(events_view, ledger_path)
    click.echo(f"events: {counts['handled']} handled, {counts['pending']} pending, "
               f"{counts['failed']} failed")
    if counts.get("unread"):
        click.echo(f"webhook bodies that named no case: {counts['unread']} (the newest "
                   "100 are kept in the ledger's unread table)")
    for event in failed:
        click.echo(f"failed: {event['case_name']} {event['status'] or '-'} "
                   f"({event['status_change_date'] or 'no date'}) after "
                   f"{plural(int(event['attempts']), 'attempt')}: "
                   f"{truncate(str(event['error']), 200)}")
    sys.exit(0)


@click.command("listen")
@click.option("--port", type=Number(0, 65535, integer=True), default=None,
              help="Port to listen on for webhooks (0: any free one). Required unless --poll "
                   "or --show-events.")
@click.option("--poll", type=Number(1, 86_400), default=None, metavar="SECONDS",
              help="Also read the case listing every SECONDS (status changes since the last "
                   "one seen, kept in the ledger); works on every tenant, with or without "
                   "--port.")
@click.option("--bind", default="127.0.0.1", show_default=True,
              help="Address to listen on.")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --bind address.")
@click.option("--ledger", "ledger_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Ledger file where every event is recorded (created if missing).")
@click.option("--on-finalized", type=click.Choice(["pull-reports"]), default=None,
              help="What to do when a case is found finalized.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Report directory for --on-finalized pull-reports.")
@click.option("--reports", "reports", multiple=True, metavar="TYPE",
              help="Report types for --on-finalized (default: pdf; 'all' for every type).")
@click.option("--retry-failed", is_flag=True,
              help="Give events that failed in earlier runs a fresh set of attempts.")
@click.option("--show-events", is_flag=True,
              help="Print the ledger's events (handled, pending, failed and why) and exit.")
@_client_options
def listen_command(port: int | None, poll: float | None, bind: str, allow_remote: bool,
                   ledger_path: Path,
                   on_finalized: str | None, out: Path | None, reports: Sequence[str],
                   retry_failed: bool, show_events: bool, host: str | None, sandbox: bool,
                   tenant: str | None, concurrency: int, rate: float | None, timeout: float,
                   verbose: int, quiet: bool) -> None:
    """Follow case status changes: webhooks at a secret URL (--port), the case listing
    (--poll), or both. Record each change, re-read the case, and optionally download the
    reports of cases that are finalized. Runs until Ctrl-C.

    A webhook body in which no case name is found is kept in the ledger and answered 200,
    and the listing is read at once to catch up. See docs/listening.md.

    On stdout: the webhook URL for the sender, once bound (with --show-events: the events).
    On stderr: where it listens, what the ledger holds, and at the end what it did; with
    --quiet, only errors.

    \b
    Examples:
      export EMG_WEBHOOK_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
      emg-batch listen --port 8001 --ledger events.sqlite \\
          --on-finalized pull-reports --out reports/
      emg-batch listen --poll 300 --ledger events.sqlite \\
          --on-finalized pull-reports --out reports/

    \b
    Environment:
      EMG_WEBHOOK_TOKEN   the token of the webhook URL /hooks/<token> (default: a new one,
                          printed at start). This secret URL is how Emedgene's sender is
                          authenticated: give Illumina support the whole URL.
      EMG_WEBHOOK_SECRET  only for a relay of your own that signs what it forwards: every
                          body must then carry X-Emg-Signature: sha256=<hex>, the
                          HMAC-SHA256 of the body with this secret. Emedgene's sender cannot
                          compute it: with it set, every webhook Emedgene sends directly is
                          refused (401). Leave it unset when Emedgene posts to the listener.
    """
    from batch.pull import FollowOptions, HookAuth, ListenerStats, parse_report_types

    setup_logging(verbose, quiet)
    if show_events:
        _show_events(ledger_path)
    if port is None and poll is None:
        raise click.UsageError("--port is required (0: any free port), or --poll SECONDS")
    if (on_finalized is None) != (out is None):
        raise click.UsageError("--on-finalized pull-reports and --out DIR go together")
    try:
        types = parse_report_types(reports or ("pdf",))
        auth = HookAuth.from_env(os.environ)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    if allow_remote and not is_loopback(bind):
        say("warning: the listener speaks plain HTTP; off this machine, put a TLS-terminating "
            "proxy in front of it", quiet=quiet)
    where = target(host, sandbox, tenant)
    rate, concurrency = tuned(where, rate, concurrency)
    connection = jobs.Connection(rate=rate, concurrency=concurrency, timeout=timeout)
    stats = ListenerStats()
    call(jobs.listen_job, where, connection, ledger_path, host=bind, port=port, auth=auth,
         follow=FollowOptions(interval=poll), on_finalized_out=out, report_types=types,
         ready=_ready(auth, stats, quiet, poll), allow_remote=allow_remote,
         workers=concurrency, retry_failed=retry_failed, stats=stats)
    _say_stopped(stats, quiet)


def _say_stopped(stats: ListenerStats, quiet: bool) -> None:
    refused = sum(stats.refused.values())
    listing = stats.follow
    read = (f"; listing read {plural(listing.reads, 'time')} "
            f"({plural(listing.recorded, 'new change')}, {listing.failures} failed)"
            if listing.reads or listing.failures else "")
    say(f"stopped: {plural(stats.received, 'event')} ({stats.duplicates} duplicates), "
        f"{stats.handled} handled, {plural(stats.reports_downloaded, 'report')} downloaded, "
        f"{plural(stats.failures, 'failure')} ({stats.gave_up} left failed), {refused} "
        f"refused, {stats.busy} answered busy, {stats.unread} naming no case (kept){read}",
        quiet=quiet)
