"""Reports in words for the console: where a ledger stands (``emg-batch status``), what a run
did (the run summary), and a revert (the plan shown before anything is sent, and what was
done).

The status report comes from aggregate queries only, so it is fast on 100,000 families.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from batch.ledger import STEPS, Binding, Ledger
from batch.manifest import Problem
from batch.outputs.outcomes import STATE_ORDER, label, sorted_counts, step_outcome
from batch.outputs.review import COUNT_KEYS, UPDATES
from batch.run.revert import LEFT_ALONE, Item, RevertPlan, RevertSummary
from batch.run.summary import RunSummary
from batch.text import plural


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def status_report(ledger: Ledger) -> dict[str, Any]:
    """Where the ledger stands, from aggregate queries only (fast on 100,000 families).

    ``{"families", "server": {"host", "account"} | None, "in_progress": {"run", "command",
    "pid", "since", "concurrency"} | None, "steps": {step: {state: n}}, "failures": [...],
    "last_run": {...} | None}``, and ``"unread_webhook_bodies": n`` when the listener kept
    bodies that named no case; *server* is where the ledger's cases are; *in_progress* the
    run going on now (its process alive and holding the ledger), whose ``sending`` steps are
    in flight, not interrupted; times are ISO 8601 with the local offset.
    """
    live = ledger.in_progress()
    last = ledger.last_run()
    run = None if last is None else {
        "command": last.command, "manifest": last.manifest_path, "host": last.host,
        "options": last.options, "started": _iso(last.started_at), "ended": _iso(last.ended_at),
        "exit_code": last.exit_code, "counts": last.counts,
    }
    bound = ledger.binding()
    report = {
        "families": ledger.family_count(),
        "server": None if bound is None else {"host": bound.host, "account": bound.account},
        "in_progress": None if live is None else {
            "run": live.id, "command": live.command, "pid": live.pid,
            "since": _iso(live.started_at), "concurrency": live.options.get("concurrency")},
        "steps": sorted_counts(ledger.step_counts()),
        "failures": ledger.failure_groups(),
        "last_run": run,
    }
    unread = ledger.unread_count()
    if unread:
        report["unread_webhook_bodies"] = unread
    return report


def render_status(report: Mapping[str, Any]) -> str:
    """The status report as stable text lines (no colours, no terminal widths)."""
    lines = [f"Families: {report.get('families', 0)}"]
    server = report.get("server")
    if server:
        lines.append(f"Server: {Binding(server['host'], server.get('account'))}")
    live = report.get("in_progress")
    if live:
        lines.append(_render_live(live, report.get("steps") or {}))
    lines += _render_steps(report.get("steps") or {})
    lines += failure_lines(report.get("failures") or [])
    lines += _render_run(report.get("last_run"), live=bool(live))
    unread = report.get("unread_webhook_bodies")
    if unread:
        lines.append(f"Webhook bodies that named no case: {unread} (kept in the ledger; the "
                     "listener caught up from the case listing)")
    return "\n".join(lines)


def _render_live(live: Mapping[str, Any], steps: Mapping[str, Mapping[str, int]]) -> str:
    """The run going on now, with its counts as the ledger holds them at this moment."""
    parts = []
    for step, counts in steps.items():
        shown = [f"{state} {n}" + (_in_flight(n, live.get("concurrency"))
                                   if state == "sending" else "")
                 for state, n in counts.items() if n]
        parts.append(f"{label(step)} " + ", ".join(shown))
    head = (f"In progress: run {live.get('run')} ({live.get('command')}, pid {live.get('pid')})"
            f" since {live.get('since')}")
    return head + (": " + "; ".join(parts) if parts else "")


def _in_flight(sending: int, concurrency: object) -> str:
    """What ``sending`` means in a run going on: creates are marked a window ahead of the
    workers, so only as many as the run's concurrency can be on the wire."""
    if not isinstance(concurrency, int):
        return " (in flight or next in line)"
    if sending <= concurrency:
        return " (in flight)"
    return f" (up to {concurrency} in flight, the others next in line)"


def _render_steps(steps: Mapping[str, Mapping[str, int]]) -> list[str]:
    if not steps:
        return ["Steps: none recorded"]
    extra = sorted({s for v in steps.values() for s in v} - set(STATE_ORDER))
    states = [*STATE_ORDER, *extra]
    width = max(len("Step"), *(len(label(s)) for s in steps))
    head = "  ".join(f"{s:>{max(len(s), 6)}}" for s in states)
    lines = [f"{'Step':<{width}}  {head}"]
    for step, counts in steps.items():
        cells = "  ".join(f"{counts.get(s, 0):>{max(len(s), 6)}}" for s in states)
        lines.append(f"{label(step):<{width}}  {cells}")
    return lines


def failure_lines(failures: Sequence[Mapping[str, Any]],
                  head: str = "Failures (most frequent first):") -> list[str]:
    """Failed and unknown steps grouped by reason, most frequent first: a count, the reason in
    words and the first families of each (``status`` and the run summary)."""
    if not failures:
        return ["Failures: none"]
    lines = [head]
    for f in failures:
        text = step_outcome(str(f.get("step")), str(f.get("state")), f.get("error_class"),
                        f.get("message"), f.get("http_status"))
        lines.append(f"  {f.get('count')} x {text} ({_families(f)})")
    return lines


def _families(group: Mapping[str, Any]) -> str:
    """``family F1``, ``families F1, F2, F3 and 4 more``."""
    names = [str(n) for n in group.get("families") or [group.get("example_family")]]
    count = group.get("count")
    more = count - len(names) if isinstance(count, int) and count > len(names) else 0
    listed = ", ".join(names) + (f" and {more} more" if more else "")
    return f"{'family' if len(names) == 1 and not more else 'families'} {listed}"


def _render_run(run: Mapping[str, Any] | None, *, live: bool = False) -> list[str]:
    if not run:
        return ["Last run: none"]
    ended = run.get("ended") or ("not yet: in progress" if live
                                 else "not recorded (still running or killed)")
    lines = [f"Last run: {run.get('command')}, exit code "
             f"{'-' if run.get('exit_code') is None else run.get('exit_code')}",
             f"  manifest: {run.get('manifest') or '-'}",
             f"  host: {run.get('host') or '-'}",
             f"  started: {run.get('started') or '-'}",
             f"  ended: {ended}"]
    options = dict(run.get("options") or {})
    settings = options.pop("settings", None) or []
    if options:
        lines.append("  options: " + ", ".join(f"{k}={options[k]}" for k in sorted(options)))
    lines += _render_settings(settings)
    counts = run.get("counts") or {}
    shown = [f"{k} {counts[k]}" for k in COUNT_KEYS if counts.get(k)]
    if shown:
        lines.append("  counts: " + ", ".join(shown))
    return lines


def _render_settings(settings: Sequence[Mapping[str, Any]]) -> list[str]:
    """The run's tenant, and where each of its settings came from (``run`` records them)."""
    shown = [f"{s.get('name')} {s.get('value')} (from {s.get('origin')})" for s in settings
             if isinstance(s, Mapping)]
    return ["  settings: " + "; ".join(shown)] if shown else []


def render_problems(problems: Sequence[Problem], *, quiet: bool = False,
                    warnings_shown: int | None = None) -> list[str]:
    """The problems of a manifest as lines: every error; the warnings unless *quiet*, all of
    them in their place (``validate``), or after the errors, counted, the first
    *warnings_shown* of them (``run``)."""
    if warnings_shown is None:
        return [str(p) for p in problems if p.severity == "error" or not quiet]
    lines = [str(p) for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    if quiet or not warnings:
        return lines
    head = plural(len(warnings), "warning")
    if len(warnings) > warnings_shown:
        head += f", the first {warnings_shown} (see `emg-batch validate` for all)"
    return [*lines, f"{head}:", *(str(p) for p in warnings[:warnings_shown])]


def render_summary(summary: RunSummary, *, files: Mapping[str, Path | None],
                   failures: Sequence[Mapping[str, Any]] = ()) -> str:
    """The end-of-run summary as lines of text; *files* names what was written
    (``results``, ``review``, ``ledger``); *failures* are the ledger's failure groups
    (``Ledger.failure_groups``), shown by reason as ``status`` shows them."""
    if summary.invalid and not summary.ran:
        which = ("the one family has" if summary.families == 1
                 else f"{summary.invalid} of {summary.families} families have")
        lines = [f"invalid: {which} errors; nothing was sent"]
    elif summary.stopped is not None and not summary.ran:
        reason = summary.stop_reason or "the run stopped"
        lines = [f"stopped: {reason}" if NOT_SENT in reason else f"stopped: {reason}; {NOT_SENT}"]
    else:
        lines = _summary_lines(summary)
        traffic = lines.pop()  # requests, retries, 429s, time: after what people act on
        if failures and (summary.failed or summary.unknown):
            lines += failure_lines(failures, "failures by reason, most frequent first:")
        if summary.stop_reason and summary.stopped != "interrupted":  # said by the first line
            lines.append(f"why: {summary.stop_reason}")
        if summary.stopped is not None and summary.not_attempted:
            lines.append(f"not attempted: {plural(summary.not_attempted, 'family')} (the run "
                         "stopped before them)")
        elif summary.not_attempted and not summary.dry_run:  # only --limit leaves them
            lines.append(f"left for the next run: {plural(summary.not_attempted, 'family')} "
                         "(--limit)")
        lines.append(traffic)
    lines += [f"{label}: {path}" for label, path in files.items() if path is not None]
    hint = _hint(summary)
    if hint:
        lines.append(f"hint: {hint}")
    return "\n".join(lines)


#: What to do after a stop, by its cause.
STOP_HINTS = {
    "auth": "check the credentials (EMG_USERNAME and EMG_PASSWORD, or EMG_TOKEN), then rerun "
            "the same command",
    "server": "check the host (--host or EMG_HOST) and that the server answers "
              "(emg-batch doctor), then rerun the same command",
    "ledger": "free space or fix the permissions of the ledger's folder, then rerun the same "
              "command to resume",
}
NEVER_TWICE = "; created cases are never created again"
NOT_SENT = "nothing was sent"


def _hint(summary: RunSummary) -> str | None:
    """What to do next: the stop's own remedy, else fix what failed, else just resume."""
    if summary.exit_code not in (1, 3, 130):
        return None
    after = NEVER_TWICE if summary.ran else ""
    if summary.stopped in STOP_HINTS:
        return STOP_HINTS[summary.stopped] + after
    if summary.failed or summary.unknown or summary.invalid:
        return "fix what failed and rerun the same command" + after
    return "rerun the same command to resume" + after


def _summary_lines(summary: RunSummary) -> list[str]:
    verb = ("plan" if summary.dry_run else
            "interrupted" if summary.stopped == "interrupted" else
            "stopped" if summary.stopped else "done")
    lines = [
        f"{verb}: {plural(summary.families, 'family')}: created {summary.created}, "
        f"adopted {summary.adopted}, updated {summary.updated}, skipped {summary.skipped}, "
        f"failed {summary.failed}, unknown {summary.unknown}"
        + (f", changed {summary.changed}" if summary.changed else ""),
    ]
    if summary.updated and summary.actions:
        lines.append("updated: " + ", ".join(
            plural(summary.actions[step], UPDATES.get(step, step.replace("_", " ")))
            for step in STEPS if step in summary.actions))
    if summary.changed:
        named = ", ".join(summary.changed_families[:3])
        more = summary.changed - min(3, len(summary.changed_families))
        lines.append(f"changed: {plural(summary.changed, 'family', 'families')} edited after "
                     f"their case was created, not re-created ({named}"
                     f"{f' and {more} more' if more else ''}; the review's Cases sheet says "
                     "which)")
    if summary.invalid:
        lines.append(f"skipped as invalid: {summary.invalid} (--skip-invalid)")
    if summary.dry_run:
        lines.append("plan: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.plan.items())))
    lines.append(f"requests {summary.requests}, retries {summary.retries}, "
                 f"429s {summary.rate_limited}, elapsed {summary.elapsed:.1f}s")
    return lines


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
