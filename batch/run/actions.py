"""The action steps on an existing case: assign participants, add a preset group, set the
status. Each is marked ``sending`` (committed) before it goes out and recorded after.

Assigning and setting a status are idempotent. A preset group is not: after a lost answer it
is created again only when the case shows it is not there.
"""

from __future__ import annotations

from typing import Any

import anyio

from batch.errors import AmbiguousCreate, ApiError, AuthError
from batch.ledger import State
from batch.manifest import Family
from batch.run.context import RunContext, Undecided, outcome_of, refused


async def run_action(ctx: RunContext, step: str, family: Family, case: str) -> bool:
    """Run one action step; record the outcome. False stops the family's chain."""
    fid = family.family_id
    sent = False
    try:
        if step == "preset_group" and await _preset_group_exists(ctx, family, case):
            await ctx.ledger.record_succeeded(fid, step, case_name=case, run_id=ctx.run_id)
            return True
        ids: list[int] = []
        if step == "assign":
            ids = await ctx.client.user_ids(list(family.actions.assign_to))
        await ctx.ledger.mark_sending(fid, step, run_id=ctx.run_id)
        sent = True
        await _send(ctx, step, family, case, ids)
    except Undecided as exc:
        ctx.unknown(fid, step, f"needs review: {exc}", count=True)
        return False
    except AmbiguousCreate as exc:
        ctx.unknown(fid, step, exc.message, exc, count=True)
        return False
    except AuthError as exc:
        if sent:  # 401/403: the server did not act on this request
            ctx.ledger.record_refused(fid, step, outcome_of(exc))
        ctx.halt("auth", refused(exc))
        return False
    except ApiError as exc:
        if not sent and _uncertain(ctx, fid, step):
            ctx.unknown(fid, step, f"could not check: {exc.message}", exc, count=True)
        else:
            await ctx.fail(family, step, outcome_of(exc), case=case)
        return False
    except anyio.get_cancelled_exc_class():
        if sent:
            ctx.unknown(fid, step, "cancelled while the request was in flight")
        raise
    await ctx.ledger.record_succeeded(fid, step, case_name=case, run_id=ctx.run_id)
    ctx.summary.actions[step] = ctx.summary.actions.get(step, 0) + 1
    return True


async def _send(ctx: RunContext, step: str, family: Family, case: str, ids: list[int]) -> None:
    actions = family.actions
    if step == "assign":
        await ctx.client.assign(case, ids)
    elif step == "preset_group":
        await ctx.client.create_preset_group(
            case, name=actions.preset_group or "", gene_lists=list(actions.preset_gene_lists))
    elif step == "set_status":
        await ctx.client.set_status(case, actions.set_status or "")


def _uncertain(ctx: RunContext, family_id: str, step: str) -> bool:
    """Whether an earlier try of the step may have reached the server."""
    record = ctx.ledger.family(family_id)
    previous = record.steps.get(step) if record else None
    return previous is not None and previous.state in (State.SENDING, State.UNKNOWN)


async def _preset_group_exists(ctx: RunContext, family: Family, case: str) -> bool:
    """After a lost answer, whether the preset group is on the case (never created twice).

    A real case object lists no preset groups (``preset_groups`` is an emulator extra); the
    presets a tenant shows on a case are ``checked_presets`` (by name). A group found in either
    is there; otherwise whether it is cannot be told, and the family needs review, unless the
    user checked it is not there (``--resend-unknown preset_group``).
    """
    if not _uncertain(ctx, family.family_id, "preset_group"):
        return False
    if "preset_group" in ctx.options.resend_unknown:
        return False
    name = family.actions.preset_group or ""
    data = await ctx.client.get_case(case)
    if name in _preset_names(data):
        return True
    raise Undecided(
        f"the answer to creating preset group {name!r} on case {case} was lost, and the case "
        "does not show whether it is there; check the case in Emedgene: if the group is there, "
        "clear this family's Preset Group and Preset Gene Lists cells and rerun; if it is not, "
        "rerun with --resend-unknown preset_group")


def _preset_names(data: dict[str, Any]) -> set[str]:
    """Preset (group) names a case object shows: emulator ``preset_groups``, ``checked_presets``."""
    names: set[str] = set()
    groups = data.get("preset_groups")
    if isinstance(groups, list):
        names.update(str(g.get("name")) for g in groups if isinstance(g, dict))
    checked = data.get("checked_presets")
    if isinstance(checked, dict):
        names.update(str(key) for key in checked)
    return names
