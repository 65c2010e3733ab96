"""Finding the case a create may have made when its answer was lost (never a second case).

The proband's sample is looked up (``GET /api/sample/?query=…&exact_match=true``; a hit's
``note`` is its case), and a case created after the attempt began, whose proband is that
sample, is this family's. A case another family of the ledger already owns is never taken.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

from batch.manifest import Family
from batch.run.context import RunContext


class Undecided(Exception):
    """Reconciliation could not tell whether the case exists (needs review)."""


async def find_case(ctx: RunContext, family: Family) -> str | None:
    """The case a lost create of *family* made; None when it certainly does not exist."""
    record = ctx.ledger.family(family.family_id)
    sent = record.proband_sample if record else ""
    samples = [s for s in dict.fromkeys((sent, family.proband_sample)) if s]
    if not samples:
        raise Undecided("the proband has no BioSample Name to look its case up by")
    create = record.create if record else None
    since = (create.started_at if create and create.started_at else time.time())
    since -= ctx.options.reconcile_skew
    for sample in samples:
        for hit in await ctx.client.find_samples(sample, exact=True):
            case = str(hit.get("note") or "")
            owner = ctx.claimed.get(case)
            if not case.startswith("EMG") or owner not in (None, family.family_id):
                continue
            if await _is_ours(ctx, case, sample, since):
                return case
    return None


async def _is_ours(ctx: RunContext, case: str, sample: str, since: float) -> bool:
    """Whether *case* was created since *since* with *sample* as its proband."""
    data = await ctx.client.get_case(case)
    created = data.get("created")
    try:
        created_at = parsedate_to_datetime(str(created)).timestamp()
    except (TypeError, ValueError):
        raise Undecided(f"case {case} has no readable creation time") from None
    proband = (data.get("patients") or {}).get("proband") or {}
    names = {proband.get("fastq_sample"), proband.get("pending_sample_name")}
    return created_at >= since and sample in names
