"""Pulling data out of Emedgene in bulk, on the same client, limiter, pool and ledger as ``run``.

``finalized`` (cases finalized since a time, and their reports), ``reports`` (one case's
reports: report types, which reports a case has, resumable downloads), ``paths`` (where
reports go on disk), ``tables`` (which cases or samples; tagged variants, case info and the
case of each sample, as tables) and ``listen`` (the listener and its bounded work list, with
``hooks``, its authenticated door and the webhook bodies it reads, and ``follow``, the case
listing it reads).
"""

from batch.pull.finalized import FinalizedOptions, PullResult, parse_since, pull_finalized
from batch.pull.hooks import SIGNATURE_HEADER, HookAuth
from batch.pull.listen import FollowOptions, ListenerLimits, ListenerStats, dedupe_key, listen
from batch.pull.paths import report_path, safe_name
from batch.pull.reports import (
    ALL_REPORTS,
    FINALIZED,
    CaseReports,
    Discovery,
    parse_report_ids,
    parse_report_types,
    pull_case_reports,
)
from batch.pull.tables import (
    TableResult,
    cases_from_ledger,
    cases_from_manifest,
    pull_candidates,
    pull_info,
    pull_samples,
    samples_from_manifest,
    split_cases,
)

__all__ = [
    "ALL_REPORTS",
    "FINALIZED",
    "SIGNATURE_HEADER",
    "CaseReports",
    "Discovery",
    "FinalizedOptions",
    "FollowOptions",
    "HookAuth",
    "ListenerLimits",
    "ListenerStats",
    "PullResult",
    "TableResult",
    "cases_from_ledger",
    "cases_from_manifest",
    "dedupe_key",
    "listen",
    "parse_report_ids",
    "parse_report_types",
    "parse_since",
    "pull_candidates",
    "pull_case_reports",
    "pull_finalized",
    "pull_info",
    "pull_samples",
    "report_path",
    "safe_name",
    "samples_from_manifest",
    "split_cases",
]
