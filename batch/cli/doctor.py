"""``emg-batch doctor``: a read-only compatibility check of a tenant."""

from __future__ import annotations

import json
import sys

import click

from batch import jobs
from batch.cli.common import ENVIRONMENT, call, host_options, output_options, setup_logging, target


@click.command("doctor", epilog=ENVIRONMENT)
@host_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@output_options
def doctor_command(host: str | None, sandbox: bool, tenant: str | None, as_json: bool, verbose: int,
                   quiet: bool) -> None:
    """Check, read-only and in seconds, that a tenant answers what emg-batch relies on.

    Logs in, reads the tenant's OpenAPI document where it serves one, reads one recent case
    and checks its fields, tries report discovery and the sample, user and storage look-ups.
    Sends only GET requests and the login. Exit 0 when compatible, 1 when not.

    On stdout: the report (text, or JSON with --json), with or without --quiet; on stderr,
    logs and errors (--quiet: errors only).

    \b
    Examples:
      emg-batch doctor --host https://lab.emg.illumina.com
      emg-batch doctor --sandbox --json
    """
    setup_logging(verbose, quiet)
    where = target(host, sandbox, tenant)
    assert where is not None
    report = call(jobs.doctor_job, where)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else jobs.render_doctor(report))
    sys.exit(report.exit_code)
