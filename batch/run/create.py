"""The create step of one family: reconcile an uncertain earlier try, build, send, record.

A create is marked ``sending`` (committed) before it goes out. A lost answer is never
re-sent in the same run: after a short pause the case is looked up and adopted if it is there,
else the create stays ``unknown`` and the next run looks again before sending.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import anyio

from batch.errors import AmbiguousCreate, ApiError, AuthError, BuildError
from batch.ledger import Outcome
from batch.manifest import Family
from batch.payload import build_payload
from batch.run.context import RunContext, Undecided, outcome_of, refused
from batch.run.existing import existing_case
from batch.run.plan import FamilyPlan
from batch.run.reconcile import find_case

Absent = Literal["absent"]


async def create(ctx: RunContext, family: Family, plan: FamilyPlan) -> str | None:
    """Create the family's case (or find the one an earlier try made); its name, or None
    when the outcome was recorded as failed or unknown."""
    if plan.reconcile:
        found = await _reconcile_or_record(ctx, family)
        if found != "absent":
            return found
    elif plan.look_up:
        found = await _look_up(ctx, family)
        if found != "absent":
            return found
    try:
        payload = await build_payload(family, ctx.resolver)
    except BuildError as exc:
        ctx.unreserve(family.family_id)
        await ctx.fail(family, "create", Outcome(kind="BuildError", message=exc.message))
        return None
    except AuthError as exc:
        ctx.halt("auth", refused(exc))
        return None
    except ApiError as exc:
        ctx.unreserve(family.family_id)
        await ctx.fail(family, "create", outcome_of(exc, f"look-up failed: {exc.message}"))
        return None
    return await _send(ctx, family, payload, final=not plan.steps)


async def _reconcile_or_record(ctx: RunContext, family: Family) -> str | Absent | None:
    """Reconcile an uncertain create: the adopted case, "absent", or None (recorded)."""
    fid = family.family_id
    try:
        found = await find_case(ctx, family)
    except Undecided as exc:
        ctx.unknown(fid, "create", f"needs review: {exc}", count=True)
        return None
    except AuthError as exc:
        ctx.halt("auth", refused(exc))
        return None
    except ApiError as exc:
        ctx.unknown(fid, "create", f"could not look the case up: {exc.message}", count=True)
        return None
    if found is None:
        return "absent"
    return await _created(ctx, family, found, adopted=True)


async def _look_up(ctx: RunContext, family: Family) -> str | Absent | None:
    """Before a first create: the family's case if it already exists and is adopted,
    "absent", or None (the family stops, recorded with why)."""
    try:
        case = await existing_case(ctx, family)
    except AuthError as exc:
        ctx.halt("auth", refused(exc))
        return None
    except (Undecided, ApiError) as exc:
        ctx.unreserve(family.family_id)
        await ctx.fail(family, "create", _look_up_failed(exc))
        return None
    if case is None:
        return "absent"
    ctx.unreserve(family.family_id)
    if ctx.options.if_exists == "adopt":
        return await _created(ctx, family, case, adopted=True)
    await ctx.fail(family, "create", Outcome(kind="CaseExists", message=(
        f"the family's case already exists on the server: {case}; rerun with --if-exists "
        "adopt to take it over (and run the family's other steps on it), or --if-exists "
        "create to create another")))
    return None


def _look_up_failed(exc: Undecided | ApiError) -> Outcome:
    if isinstance(exc, Undecided):
        return Outcome(kind="NeedsReview", message=(
            f"needs review: {exc}; put the right one in the family's Case Id cell, or rerun "
            "with --if-exists create"))
    return outcome_of(exc, f"could not look for the family's case on the server: {exc.message}")


async def _send(ctx: RunContext, family: Family, payload: Mapping[str, Any], *,
                final: bool) -> str | None:
    """One create attempt: the case name, or None when recorded as failed or unknown.

    When no step follows (*final*), the success rides with the next commit instead of being
    waited for (see ``Ledger.record_created``).
    """
    fid = family.family_id
    if fid in ctx.reserved:
        ctx.reserved.discard(fid)  # marked sending with its window (see Runner._reserving)
    else:
        await ctx.ledger.mark_sending(fid, "create", run_id=ctx.run_id,
                                      proband_sample=ctx.planner.sample_to_keep(family))
    try:
        result = await ctx.client.create_case(payload)
    except AmbiguousCreate as exc:
        ctx.unknown(fid, "create", exc.message, exc)
        return await _after_ambiguous(ctx, family)
    except AuthError as exc:
        # 401/403: the server did not act on this request
        ctx.ledger.record_refused(fid, "create", outcome_of(exc))
        ctx.halt("auth", refused(exc))
        return None
    except ApiError as exc:
        await ctx.fail(family, "create", outcome_of(exc))
        return None
    except anyio.get_cancelled_exc_class():
        ctx.unknown(fid, "create", "cancelled while the create was in flight")
        raise
    assert result is not None  # a real create always answers with a name
    return await _created(ctx, family, result.name, adopted=False, status=result.status,
                          final=final)


async def _after_ambiguous(ctx: RunContext, family: Family) -> str | None:
    """After a lost answer: adopt the case if it is already visible, else leave it unknown.

    Never re-sent in the same run: a slow server may still be creating it. The next run
    looks it up again before anything is sent.
    """
    await anyio.sleep(ctx.options.settle)
    try:
        found = await find_case(ctx, family)
    except (Undecided, ApiError):
        found = None
    if found is not None:
        return await _created(ctx, family, found, adopted=True)
    ctx.count_unknown()
    return None


async def _created(ctx: RunContext, family: Family, case: str, *, adopted: bool,
                   status: int = 201, final: bool = False) -> str:
    await ctx.ledger.record_created(family.family_id, case, http_status=status,
                                    run_id=ctx.run_id, final=final)
    ctx.claimed[case] = family.family_id
    if adopted:
        ctx.summary.adopted += 1
    else:
        ctx.summary.created += 1
    return case
