"""Pulling data out of Emedgene in bulk, on the same client, limiter, pool and ledger as ``run``.

``finalized`` (cases finalized since a time, and their reports), ``reports`` (one case's
reports, resumable), ``tables`` (tagged variants and case info of many cases), ``samples``
(which case holds each sample), ``cases`` (which cases or samples), ``options`` (``--since``,
report types) and ``listen`` (the listener, with ``hooks``, its authenticated door,
``shapes``, the webhook bodies it reads, ``follow``, the case listing it reads, and ``inbox``,
its bounded work list).
"""

from batch.pull.cases import (
    cases_from_ledger,
    cases_from_manifest,
    samples_from_manifest,
    split_cases,
)
from batch.pull.discover import Discovery, parse_report_ids
from batch.pull.finalized import FinalizedOptions, PullResult, pull_finalized
from batch.pull.hooks import SIGNATURE_HEADER, HookAuth
from batch.pull.listen import FollowOptions, ListenerLimits, ListenerStats, dedupe_key, listen
from batch.pull.options import ALL_REPORTS, parse_report_types, parse_since
from batch.pull.paths import report_path, safe_name
from batch.pull.reports import FINALIZED, CaseReports, pull_case_reports
from batch.pull.samples import pull_samples
from batch.pull.tables import TableResult, pull_candidates, pull_info

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
