"""``revert``: the cases a ledger's runs created, moved to the trash after the user saw the
plan (and said yes, or passed ``--yes``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from batch.errors import LedgerError, UsageError
from batch.jobs.connect import Connection, Target, ledger_file, open_bound, open_client
from batch.manifest import read_manifest
from batch.run.revert import (
    RevertOptions,
    RevertPlan,
    RevertSummary,
    execute_revert,
    plan_revert,
)

#: Why ``--sandbox`` cannot revert: its sandbox starts empty.
NO_SANDBOX = ("revert needs the server the cases are on: a --sandbox run's sandbox was gone "
              "with its command; run `emg-batch sandbox` and use --host for cases to revert")


async def revert_job(manifest: Path | None, *, ledger_path: Path | None, target: Target,
                     connection: Connection, options: RevertOptions,
                     decide: Callable[[RevertPlan], bool]) -> RevertSummary | None:
    """``emg-batch revert``: plan (statuses read, nothing sent), ``decide`` (shows the plan;
    True to go on), then send. None when ``decide`` said no: nothing was sent."""
    path, options = _prepare(manifest, ledger_path, target, options)
    with open_bound(path, target) as ledger:
        async with open_client(target, connection) as client:
            plan = await plan_revert(client, ledger, options)
            if not decide(plan):
                return None
            return await execute_revert(client, ledger, plan, options,
                                        manifest=str(manifest) if manifest else None)


def _prepare(manifest: Path | None, ledger_path: Path | None, target: Target,
             options: RevertOptions) -> tuple[Path, RevertOptions]:
    """The ledger to revert (it must exist) and the options with where the run left each
    case; the errors that send nothing."""
    if target.sandbox:
        raise UsageError(NO_SANDBOX)
    path = ledger_file(manifest, ledger_path, target) if manifest else ledger_path
    if path is None:
        raise UsageError("pass a MANIFEST or --ledger PATH")
    if not path.exists():
        raise LedgerError(f"no ledger at {path}: no run recorded its cases, nothing to revert")
    if manifest is not None and not options.left_at and manifest.exists():
        options = _with_left_at(manifest, options)
    return path, options


def _with_left_at(manifest: Path, options: RevertOptions) -> RevertOptions:
    """*options* with the status each family's ``Set Status`` asked for (where its run left
    the case)."""
    read = read_manifest(manifest)
    left = {f.family_id: f.actions.set_status for f in read.families() if f.actions.set_status}
    return dataclasses.replace(options, left_at=left)
