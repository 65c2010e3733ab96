"""The plan: every decision about a family, from the manifest and what the ledger says.

Rules (DESIGN.md, "Steps, ledger and resume"):

* succeeded steps are skipped; everything else is tried again;
* a create left ``sending`` or ``unknown`` is reconciled (looked up) before anything is sent;
* a family edited after its case was created is reported, never re-created;
* a family with a ``Case Id`` in the manifest skips the create and runs only its actions;
* a ledger that shares no family with the manifest belongs to another manifest;
* a family whose case ``revert`` moved to the trash is skipped, and created again only when
  asked (``--recreate-reverted``), once its revert is done.

The runner asks; it never decides these itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from batch.ledger import FamilyRecord, NewFamily, State, StepRecord
from batch.manifest import Family, Manifest

#: The error class of a step stopped because its case was answered for two families of the
#: ledger (a server that forgot its cases): never tried again by a rerun of this ledger.
CONFLICT = "CaseConflict"


@dataclass(frozen=True, slots=True)
class FamilyPlan:
    """What one family needs in this run."""

    family_id: str
    create: bool
    reconcile: bool
    steps: tuple[str, ...]
    changed: bool = False
    case_name: str | None = None
    #: Look for the family's case on the server before its first create.
    look_up: bool = False
    #: Its case was answered for another family too: nothing more is done.
    conflict: bool = False

    @property
    def kind(self) -> str:
        """One word for the plan table: create, reconcile, update, skip, changed or conflict."""
        if self.conflict:
            return "conflict"
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


def plan_family(family: Family, record: FamilyRecord | None, row_hash: str, *,
                look_up: bool = True) -> FamilyPlan:
    """Decide what *family* (whose rows hash to *row_hash*) needs, given its ledger record.

    A create not yet done is preceded by a look-up of the family's case on the server
    (*look_up*; off with ``--if-exists create``); an uncertain one is reconciled instead.
    """
    wanted = family_steps(family)
    actions = tuple(s for s in wanted if s != "create")
    if record is not None and any(_conflicted(s) for s in record.steps.values()):
        return FamilyPlan(family.family_id, False, False, (), False, record.case_name,
                          conflict=True)
    if record is None:
        create_now = "create" in wanted
        return FamilyPlan(family.family_id, create_now, False, actions, False, family.case_id,
                          look_up=look_up and create_now)
    create = record.steps.get("create")
    case_name = family.case_id or record.case_name or (create.case_name if create else None)
    changed = bool(
        create is not None and create.state is State.SUCCEEDED
        and record.created_hash is not None and record.created_hash != row_hash
    )
    todo = tuple(
        s for s in actions if (r := record.steps.get(s)) is None or r.state is not State.SUCCEEDED
    )
    if "create" not in wanted or (create is not None and create.state is State.SUCCEEDED):
        return FamilyPlan(family.family_id, False, False, todo, changed, case_name)
    reconcile = create is not None and create.state in (State.SENDING, State.UNKNOWN)
    # a create that failed may follow one whose answer was lost: looked up again too
    return FamilyPlan(family.family_id, True, reconcile, todo, False, case_name,
                      look_up=look_up and not reconcile)


def _conflicted(step: StepRecord) -> bool:
    return step.state is State.FAILED and step.error_class == CONFLICT


class Planner:
    """Every decision about the families of one manifest against one ledger snapshot."""

    def __init__(self, manifest: Manifest, records: Mapping[str, FamilyRecord], *,
                 look_up: bool = True) -> None:
        self.manifest = manifest
        self.records = records
        self.look_up = look_up
        self._by_sample: dict[str, list[str]] | None = None
        #: Row hashes computed while registering, each taken once more by ``plan``.
        self._hashes: dict[str, str] = {}

    def is_foreign(self) -> bool:
        """True when a non-empty ledger shares no family with the manifest."""
        if not self.records:
            return False
        # the whole file, not only the families chosen (--only) for this run
        return not any(fid in self.manifest for fid in self.records)

    def all_succeeded(self, family_id: str) -> bool:
        """The ledger holds the family with every step succeeded."""
        record = self.records.get(family_id)
        return bool(record and record.steps
                    and all(s.state is State.SUCCEEDED for s in record.steps.values()))

    def is_done(self, family_id: str) -> bool:
        """The family's case exists (ledger): nothing to check or register."""
        record = self.records.get(family_id)
        create = record.create if record else None
        return bool(record and record.case_name and create and create.state is State.SUCCEEDED)

    def needs_check(self, family: Family) -> bool:
        """Whether the family is validated: not when it names its case or its case exists."""
        if family.case_id:
            return False
        record = self.records.get(family.family_id)
        create = record.create if record else None
        return not (create and create.state is State.SUCCEEDED)

    def registration(self, seq: int, family: Family) -> NewFamily | str | None:
        """What the ledger must learn of a family before the run: the new family, the new
        rows' hash of an edited family whose case does not exist yet, or nothing."""
        record = self.records.get(family.family_id)
        row_hash = self.manifest.family_hash(family.family_id)
        self._hashes[family.family_id] = row_hash
        if record is None:
            return NewFamily(family_id=family.family_id, seq=seq,
                             proband_sample=family.proband_sample, row_hash=row_hash,
                             steps=family_steps(family))
        if record.row_hash != row_hash and record.case_name is None:
            return row_hash
        return None

    def unchanged_and_done(self, family_id: str) -> bool:
        """Created, nothing else asked for, rows as created: skip without building it."""
        if self.manifest.has_action_columns or not self.is_done(family_id):
            return False
        return self.records[family_id].created_hash == self.manifest.family_hash(family_id)

    def plan(self, family: Family) -> FamilyPlan:
        """What *family* needs in this run."""
        row_hash = self._hashes.pop(family.family_id, None) or \
            self.manifest.family_hash(family.family_id)
        return plan_family(family, self.records.get(family.family_id), row_hash,
                           look_up=self.look_up)

    def reverted(self, family_id: str) -> bool:
        """``revert`` moved (or began to move) the family's case to the trash: skipped."""
        record = self.records.get(family_id)
        return record is not None and record.reverted

    def recreatable(self) -> list[Family]:
        """The families whose revert is done: created again with ``--recreate-reverted``."""
        found = []
        for family_id in self.manifest.family_ids:
            record = self.records.get(family_id)
            revert = record.steps.get("revert") if record else None
            if revert is not None and revert.state is State.SUCCEEDED:
                found.append(self.manifest.family(family_id))
        return found

    def sample_to_keep(self, family: Family) -> str | None:
        """The proband sample the ledger must keep before a create is sent: the manifest's,
        when the ledger holds another (the row was edited); None when nothing changes."""
        record = self.records.get(family.family_id)
        if record is not None and record.proband_sample != family.proband_sample:
            return family.proband_sample
        return None

    def stale_note(self, family_id: str, plan: FamilyPlan) -> bool:
        """Whether the family carries a note that no longer holds (it is no longer changed)."""
        record = self.records.get(family_id)
        return bool(record and record.note and not plan.changed)

    def twins(self, family: Family) -> list[Family]:
        """The other families of the manifest whose proband has the same sample."""
        if self._by_sample is None:
            self._by_sample = {}
            for family_id in self.manifest.family_ids:
                position = self.manifest.proband_position(family_id)
                sample = self.manifest.cell(position, "BioSample Name") if position is not None \
                    else ""
                if sample:
                    self._by_sample.setdefault(sample, []).append(family_id)
        ids = self._by_sample.get(family.proband_sample, []) if family.proband_sample else []
        return [self.manifest.family(fid) for fid in ids if fid != family.family_id]
