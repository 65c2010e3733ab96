"""``status`` and ``export``: a ledger (found from a manifest or given) read into a report or
a file; nothing is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batch.errors import UsageError
from batch.ledger import SANDBOX_HOST, Ledger, default_path
from batch.manifest import read_manifest
from batch.outputs import export, status_report
from batch.outputs.keep import case_ids_held, refuse_inputs

EXPORT_SUFFIXES = (".xlsx", ".csv", ".parquet")


def ledger_for(manifest: Path | None, ledger: Path | None) -> Path:
    """The ledger a command reads: ``--ledger``, else the manifest's (its ``--sandbox``
    ledger when it has only that one)."""
    if ledger is not None:
        return ledger
    if manifest is not None:
        real, sandbox = default_path(manifest), default_path(manifest, sandbox=True)
        return sandbox if sandbox.exists() and not real.exists() else real
    raise UsageError("pass a MANIFEST or --ledger PATH")


def status_job(manifest: Path | None, ledger: Path | None) -> dict[str, Any]:
    """``emg-batch status``: the report of the ledger."""
    with Ledger.open(ledger_for(manifest, ledger), create=False) as opened:
        return status_report(opened)


def export_job(manifest: Path | None, ledger: Path | None, out: Path, *,
               force: bool = False) -> Path:
    """``emg-batch export``: the ledger's Cases table (or the whole workbook) to *out*.

    ``UsageError`` (nothing written) when *out* is the manifest, one its ledger's runs read,
    or a file of the ledger; or, unless *force*, a results file that holds Case Ids."""
    if out.suffix.lower() not in EXPORT_SUFFIXES:
        raise UsageError("--out must end in .xlsx, .csv or .parquet")
    path = ledger_for(manifest, ledger)
    refuse_inputs(out, manifests=[manifest] if manifest else [], ledger=path)
    # the manifest only names known cases here; rows a run was asked to include count too
    parsed = (read_manifest(manifest, include_hidden_rows=True)
              if manifest is not None and manifest.exists() else None)
    with Ledger.open(path, create=False) as opened:
        read = [Path(run.manifest_path) for run in opened.runs() if run.manifest_path]
        refuse_inputs(out, manifests=read, ledger=path)
        if not force and case_ids_held(out):
            raise UsageError(f"{out} holds the Case Ids of a run; left as it is: choose "
                             "another --out file, or pass --force to replace it")
        return export(opened, out, manifest=parsed, host=_link_host(opened),
                      live=opened.in_progress())


def _link_host(ledger: Ledger) -> str | None:
    """The host the ledger's cases are on (for links): its server, or with the sandbox (a
    new port each time) the last run's."""
    bound = ledger.binding()
    if bound is not None and bound.host != SANDBOX_HOST:
        return bound.host
    last = ledger.last_run("run")
    return last.host if last else None
