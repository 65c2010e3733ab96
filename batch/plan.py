"""The plan: compare a manifest's families with the ledger and decide what each one needs.

Rules (DESIGN.md, "Steps, ledger and resume"):

* succeeded steps are skipped; everything else is tried again;
* a create left ``sending`` or ``unknown`` is reconciled (looked up) before anything is sent;
* a family edited after its case was created is reported, never re-created;
* a family with a ``Case Id`` in the manifest skips the create and runs only its actions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from batch.ledger import FamilyRecord, State
from batch.manifest import Family


@dataclass(frozen=True, slots=True)
class FamilyPlan:
    """What one family needs in this run."""

    family_id: str
    create: bool
    reconcile: bool
    steps: tuple[str, ...]
    changed: bool = False
    case_name: str | None = None

    @property
    def kind(self) -> str:
        """One word for the plan table: create, reconcile, update, skip or changed."""
        if self.reconcile:
            return "reconcile"
        if self.create:
            return "create"
        if self.steps:
            return "changed" if self.changed else "update"
        return "changed" if self.changed else "skip"


def family_steps(family: Family) -> tuple[str, ...]:
    """Every step the family's columns ask for, in chain order."""
    create = () if family.case_id else ("create",)
    return (*create, *family.actions.steps)


def plan_family(family: Family, record: FamilyRecord | None) -> FamilyPlan:
    """Decide what *family* needs, given what the ledger says about it."""
    wanted = family_steps(family)
    actions = tuple(s for s in wanted if s != "create")
    if record is None:
        create_now = "create" in wanted
        return FamilyPlan(family.family_id, create_now, False, actions, False, family.case_id)
    create = record.steps.get("create")
    case_name = family.case_id or record.case_name or (create.case_name if create else None)
    changed = bool(
        create is not None and create.state is State.SUCCEEDED
        and record.created_hash is not None and record.created_hash != family.row_hash
    )
    todo = tuple(
        s for s in actions if (r := record.steps.get(s)) is None or r.state is not State.SUCCEEDED
    )
    if "create" not in wanted or (create is not None and create.state is State.SUCCEEDED):
        return FamilyPlan(family.family_id, False, False, todo, changed, case_name)
    reconcile = create is not None and create.state in (State.SENDING, State.UNKNOWN)
    return FamilyPlan(family.family_id, True, reconcile, todo, False, case_name)


def count_kinds(plans: Iterable[FamilyPlan]) -> dict[str, int]:
    """How many families fall under each plan kind."""
    return dict(Counter(p.kind for p in plans))


def is_foreign(ledger_families: Mapping[str, FamilyRecord], family_ids: Iterable[str]) -> bool:
    """True when a non-empty ledger shares no family with the manifest."""
    if not ledger_families:
        return False
    return not any(fid in ledger_families for fid in family_ids)
