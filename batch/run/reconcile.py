"""Finding the case a create may have made when its answer was lost (never a second case).

The proband's sample is looked up (``GET /api/sample/?query=…&exact_match=true``; a hit's
``note`` is its case), and a case created after the attempt began, whose proband is that
sample, is this family's. A case another family of the ledger already owns is never taken.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

from batch.ledger import State
from batch.manifest import Family
from batch.run.context import RunContext, Undecided
from batch.run.existing import family_key, is_this_family


async def find_case(ctx: RunContext, family: Family) -> str | None:
    """The case a lost create of *family* made; None when it certainly does not exist."""
    record = ctx.ledger.family(family.family_id)
    sent = record.proband_sample if record else ""
    samples = [s for s in dict.fromkeys((sent, family.proband_sample)) if s]
    if not samples:
        raise Undecided("the proband has no BioSample Name to look its case up by")
    _refuse_twins(ctx, family)
    create = record.create if record else None
    since = (create.started_at if create and create.started_at else time.time())
    since -= ctx.options.reconcile_skew
    found: list[str] = []
    for sample in samples:
        for hit in await ctx.client.find_samples(sample, exact=True):
            case = str(hit.get("note") or "")
            owner = ctx.claimed.get(case)
            if not case.startswith("EMG") or owner not in (None, family.family_id):
                continue
            if case not in found and await _is_ours(ctx, family, case, sample, since):
                found.append(case)
    if len(found) > 1:
        raise Undecided(f"cases {', '.join(found)} were all created for this family's sample "
                        "since the lost create")
    return found[0] if found else None


def _refuse_twins(ctx: RunContext, family: Family) -> None:
    """Two uncertain families of the same proband sample and content cannot be told apart:
    whose case the server holds is not known."""
    key = family_key(family)
    for twin in ctx.planner.twins(family):
        record = ctx.ledger.family(twin.family_id)
        create = record.create if record else None
        uncertain = create is not None and create.state in (State.SENDING, State.UNKNOWN)
        if uncertain and key is not None and family_key(twin) == key:
            raise Undecided(f"family {twin.family_id} has the same proband sample and content "
                            "and its create is uncertain too: their cases cannot be told apart")


async def _is_ours(ctx: RunContext, family: Family, case: str, sample: str,
                   since: float) -> bool:
    """Whether *case* was created since *since* with *sample* as its proband, and holds the
    family's content when a twin of the same sample could have made it."""
    data = await ctx.client.get_case(case)
    created = data.get("created")
    try:
        created_at = parsedate_to_datetime(str(created)).timestamp()
    except (TypeError, ValueError):
        raise Undecided(f"case {case} has no readable creation time") from None
    proband = (data.get("patients") or {}).get("proband") or {}
    names = {proband.get("fastq_sample"), proband.get("pending_sample_name")}
    if created_at < since or sample not in names:
        return False
    return not ctx.planner.twins(family) or is_this_family(family, data)
