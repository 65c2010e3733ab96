"""A revert in words: the plan shown before anything is sent, and what was done."""

from __future__ import annotations

from batch.outputs.words import plural
from batch.run.revert import LEFT_ALONE, Item, RevertPlan, RevertSummary

#: Cases listed per group of the plan; the ledger (status, export) holds them all.
SHOWN = 20


def render_plan(plan: RevertPlan) -> str:
    """The plan: how many cases, which, in which status, and which are left alone and why."""
    lines = [f"revert: {plural(len(plan.items), 'case')} created by {plan.scope}"]
    groups = (("to the trash", plan.to_send),
              ("already in the trash, recorded (nothing sent)", plan.of("in_trash")),
              ("left alone", plan.of(*LEFT_ALONE)))
    for title, items in groups:
        if items:
            lines.append(f"{title}: {plural(len(items), 'case')}")
            width = max(len(item.family_id) for item in items[:SHOWN])
            lines += [_line(item, width) for item in items[:SHOWN]]
            if len(items) > SHOWN:
                lines.append(f"  ... and {len(items) - SHOWN} more (emg-batch status lists them)")
    done = plan.of("done")
    if done:
        lines.append(f"reverted before: {plural(len(done), 'case')} (nothing to send)")
    return "\n".join(lines)


def _line(item: Item, width: int) -> str:
    """One case of the plan: family (padded to *width*), case, status, why it is left alone."""
    cells = [item.family_id.ljust(width), item.case, item.status or "-"]
    if item.why and item.kind != "in_trash":
        cells.append(item.why)
    return "  " + "  ".join(cells)


def question(plan: RevertPlan) -> str:
    """What the user is asked before anything is sent."""
    return f"Move {plural(len(plan.to_send), 'case')} to the trash?"


def render_revert(summary: RevertSummary) -> str:
    """What the revert did, in one line, then the cases that failed or are unknown."""
    if summary.dry_run:
        return f"dry run: nothing was sent ({plural(len(summary.plan.to_send), 'case')} would " \
               "be moved to the trash)"
    if not summary.plan.of("trash", "in_trash"):
        return "nothing was sent: no case to move to the trash"
    parts = [f"moved {plural(summary.trashed, 'case')} to the trash"]
    if summary.recorded:
        parts.append(f"{summary.recorded} already there recorded")
    if summary.failed:
        parts.append(f"{len(summary.failed)} failed")
    if summary.unknown:
        parts.append(f"{len(summary.unknown)} unknown (rerun to check)")
    lines = [", ".join(parts)]
    lines += [f"  {i.family_id}  {i.case}  failed: {i.why}" for i in summary.failed[:SHOWN]]
    lines += [f"  {i.family_id}  {i.case}  unknown: the answer was lost"
              for i in summary.unknown[:SHOWN]]
    if summary.stopped:
        lines.append(f"stopped: {summary.stopped}")
    return "\n".join(lines)
