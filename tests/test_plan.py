"""The plan, on its own: every decision about a family from the manifest and a ledger record."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.ledger import FamilyRecord, NewFamily, State, StepRecord
from batch.manifest import Manifest, read_manifest
from batch.run.plan import Planner, family_steps, plan_family
from tests.manifests import write_manifest


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    return read_manifest(write_manifest(tmp_path / "m.csv", 3))


@pytest.fixture
def with_actions(tmp_path: Path) -> Manifest:
    extra = {"Assign To": ["a@lab.org", "", ""], "Set Status": ["", "", "delivered"]}
    return read_manifest(write_manifest(tmp_path / "a.csv", 3, extra=extra))


def record(manifest: Manifest, fid: str, *, case: str | None = None,
           created_hash: str | None = None, note: str | None = None,
           **states: State) -> FamilyRecord:
    family = manifest.family(fid)
    found = FamilyRecord(fid, 0, family.proband_sample, manifest.family_hash(fid),
                         created_hash, case, note)
    found.steps = {step: StepRecord(step, state) for step, state in states.items()}
    return found


def created(manifest: Manifest, fid: str, **more: State) -> FamilyRecord:
    return record(manifest, fid, case=f"EMG{fid[-1]}", created_hash=manifest.family_hash(fid),
                  create=State.SUCCEEDED, **more)


def test_a_family_the_ledger_never_saw_is_created(manifest: Manifest) -> None:
    family = manifest.family("FAM-000000")
    plan = plan_family(family, None, manifest.family_hash("FAM-000000"))
    assert (plan.create, plan.reconcile, plan.steps, plan.kind) == (True, False, (), "create")


@pytest.mark.parametrize(("state", "kind"), [
    (State.PENDING, "create"), (State.FAILED, "create"),
    (State.SENDING, "reconcile"), (State.UNKNOWN, "reconcile"),
])
def test_an_unfinished_create_is_tried_again_or_reconciled(manifest: Manifest, state: State,
                                                           kind: str) -> None:
    planner = Planner(manifest, {"FAM-000000": record(manifest, "FAM-000000", create=state)})
    plan = planner.plan(manifest.family("FAM-000000"))
    assert plan.create and plan.kind == kind
    assert plan.reconcile == (kind == "reconcile")


def test_a_created_family_is_skipped_and_never_created_again(manifest: Manifest) -> None:
    planner = Planner(manifest, {"FAM-000000": created(manifest, "FAM-000000")})
    plan = planner.plan(manifest.family("FAM-000000"))
    assert (plan.create, plan.kind, plan.case_name) == (False, "skip", "EMG0")
    assert planner.is_done("FAM-000000") and planner.unchanged_and_done("FAM-000000")


def test_a_family_edited_after_its_case_was_created_is_reported(manifest: Manifest) -> None:
    stale = created(manifest, "FAM-000000")
    stale.created_hash = "rows as they were"
    planner = Planner(manifest, {"FAM-000000": stale})
    plan = planner.plan(manifest.family("FAM-000000"))
    assert (plan.create, plan.changed, plan.kind) == (False, True, "changed")
    assert not planner.unchanged_and_done("FAM-000000")
    assert not planner.stale_note("FAM-000000", plan)


def test_a_note_that_no_longer_holds_is_stale(manifest: Manifest) -> None:
    noted = created(manifest, "FAM-000000")
    noted.note = "rows edited after the case was created; not re-created"
    planner = Planner(manifest, {"FAM-000000": noted})
    assert planner.stale_note("FAM-000000", planner.plan(manifest.family("FAM-000000")))


@pytest.mark.parametrize(("state", "reverted", "recreatable"), [
    (State.SUCCEEDED, True, True),   # in the trash: skipped, created again only when asked
    (State.UNKNOWN, True, False),    # the move may have happened: finish the revert first
    (State.FAILED, True, False),
    (State.SENDING, True, False),
])
def test_a_reverted_family_is_skipped_and_created_again_only_when_done(
        manifest: Manifest, state: State, reverted: bool, recreatable: bool) -> None:
    planner = Planner(manifest, {"FAM-000000": created(manifest, "FAM-000000", revert=state),
                                 "FAM-000001": created(manifest, "FAM-000001")})
    assert planner.reverted("FAM-000000") is reverted
    assert not planner.reverted("FAM-000001") and not planner.reverted("FAM-000002")
    found = [f.family_id for f in planner.recreatable()]
    assert found == (["FAM-000000"] if recreatable else [])


def test_actions_left_to_do_are_planned_and_succeeded_ones_skipped(with_actions: Manifest
                                                                   ) -> None:
    done = created(with_actions, "FAM-000000", assign=State.SUCCEEDED)
    failed = created(with_actions, "FAM-000002", set_status=State.FAILED)
    planner = Planner(with_actions, {"FAM-000000": done, "FAM-000002": failed})
    assert planner.plan(with_actions.family("FAM-000000")).kind == "skip"
    later = planner.plan(with_actions.family("FAM-000002"))
    assert (later.create, later.steps, later.kind) == (False, ("set_status",), "update")
    assert not planner.unchanged_and_done("FAM-000000")  # action columns: always planned


def test_a_family_with_a_case_id_runs_only_its_actions(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text("Case Id,Assign To\nEMG100000007,a@lab.org\n", encoding="utf-8")
    manifest = read_manifest(path)
    family = manifest.family("EMG100000007")
    assert family_steps(family) == ("assign",)
    plan = Planner(manifest, {}).plan(family)
    assert (plan.create, plan.steps, plan.case_name) == (False, ("assign",), "EMG100000007")
    assert not Planner(manifest, {}).needs_check(family)


def test_registration_new_edited_and_unchanged(manifest: Manifest) -> None:
    edited = record(manifest, "FAM-000001", create=State.FAILED)
    edited.row_hash = "older rows"
    planner = Planner(manifest, {"FAM-000001": edited,
                                 "FAM-000002": record(manifest, "FAM-000002",
                                                      create=State.PENDING)})
    new = planner.registration(0, manifest.family("FAM-000000"))
    assert isinstance(new, NewFamily)
    assert (new.family_id, new.seq, new.steps) == ("FAM-000000", 0, ("create",))
    assert new.row_hash == manifest.family_hash("FAM-000000")
    assert planner.registration(1, manifest.family("FAM-000001")) == \
        manifest.family_hash("FAM-000001")
    assert planner.registration(2, manifest.family("FAM-000002")) is None


def test_checks_are_skipped_for_created_families(manifest: Manifest) -> None:
    planner = Planner(manifest, {"FAM-000000": created(manifest, "FAM-000000")})
    assert not planner.needs_check(manifest.family("FAM-000000"))
    assert planner.needs_check(manifest.family("FAM-000001"))


def test_a_ledger_of_another_manifest_is_foreign(manifest: Manifest) -> None:
    assert not Planner(manifest, {}).is_foreign()
    other = record(manifest, "FAM-000000", create=State.PENDING)
    other.family_id = "SOMEONE-ELSE"
    assert Planner(manifest, {"SOMEONE-ELSE": other}).is_foreign()
    assert not Planner(manifest, {"FAM-000000": other}).is_foreign()


def test_the_sample_sent_is_kept_when_the_row_changed(manifest: Manifest) -> None:
    renamed = record(manifest, "FAM-000000", create=State.UNKNOWN)
    renamed.proband_sample = "OLD-NAME"
    planner = Planner(manifest, {"FAM-000000": renamed})
    assert planner.sample_to_keep(manifest.family("FAM-000000")) == "FAM-000000-S0"
    assert planner.sample_to_keep(manifest.family("FAM-000001")) is None
