"""Which case is a family's: the one owner of a create's reservation and of that decision.

A create is marked ``sending`` (committed) before it goes out, with the server's clock at that
moment (``batch.api.pipeline``). Whether a case on the server is a family's is decided here, in
one place, from what the server says and never from this computer's clock:

* the proband's sample is looked up (``GET /api/sample/?query=…&exact_match=true``; a hit's
  ``note`` is its case) and each case found is read (``GET /api/test/{case}/``);
* a case **matches** the family when its proband is that sample and its case type, gene list
  and relatives' samples are the family's;
* after a create whose answer was lost (``sending`` or ``unknown``), the case it made is the one
  the server created since the create began (the case's ``created`` against the server's time
  recorded when it was sent), whose proband is the sample, and which matches the family when a
  twin (another family of the same proband sample) could have made it; with no server time on
  record, only a matching case is taken;
* otherwise a matching case is the family's existing case (a lost ledger, an earlier import by
  other means): ``--if-exists`` says whether the family stops, adopts it or creates another;
* a case that another family of the ledger holds is never taken: a create answered with such a
  name, or a look-up that finds the family's sample in such a case, is a server that forgot its
  cases (a reset test tenant, a restarted sandbox) and a conflict that stops both families for
  good, with no later step on the case.

Nothing is ever sent again for a create that may have reached the server without this decision
having answered "absent".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import anyio

from batch.errors import AmbiguousCreate, ApiError, AuthError, BuildError, NotFound, Undecided
from batch.ledger import FamilyRecord, Outcome, State
from batch.manifest import Family
from batch.payload import build_payload
from batch.payload.rules import is_integer
from batch.run.plan import CONFLICT, FamilyPlan
from batch.run.state import RunState, outcome_of, refused


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision: the lost create's case (``ours``), the family's case made before
    (``exists``), or no case of the family on the server (``absent``)."""

    kind: Literal["ours", "exists", "absent"]
    case: str | None = None


ABSENT = Verdict("absent")


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A case of the proband's sample, as read from the server."""

    case: str
    matches: bool
    created: float | None
    #: Another family of the ledger that holds this case (its proband is another sample).
    holder: str | None = None


class CaseIdentity:
    """The create step of every family of one run: reserve, decide, send, record, release."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        #: Families marked ``sending`` ahead of time and not yet sent.
        self.reserved: set[str] = set()
        #: Case name -> the family of this ledger that holds it.
        self.claimed: dict[str, str] = {}
        #: Cases answered for two families (case -> both families): no step runs on them.
        self.conflicts: dict[str, tuple[str, str]] = {}

    def load(self, records: Mapping[str, FamilyRecord]) -> None:
        """Learn which family of the ledger holds which case."""
        self.claimed = {r.case_name: fid for fid, r in records.items() if r.case_name}

    # -- reservation ------------------------------------------------------------------------

    def reserving(self, plans: Iterator[tuple[Family, FamilyPlan]], *, window: int,
                  ) -> Iterator[tuple[Family, FamilyPlan]]:
        """Mark creates ``sending`` a window at a time, in one commit, before handing them out.

        Every create must be marked before it is sent, and a commit costs far more than the
        writes in it, so a window of them shares one. A family marked but never reached (the
        run stopped first) is put back to ``pending`` by :meth:`release_unsent`; after a crash
        it is decided like any interrupted create: looked up, not found, created. Until an
        answer has told the server's time, nothing is reserved ahead.
        """
        state = self.state
        while chunk := list(itertools.islice(plans, window)):
            creates = [f for f, plan in chunk if plan.create and not plan.reconcile]
            # no server time known yet: each is marked as it is sent, once an answer told it
            if creates and not state.stop.is_set() and state.client.clock.now() is not None:
                state.ledger.reserve([(f.family_id, state.planner.sample_to_keep(f))
                                      for f in creates], "create", run_id=state.run_id,
                                     server_at=state.client.clock.now())
                self.reserved.update(f.family_id for f in creates)
            yield from chunk

    def release(self, family_id: str) -> None:
        """A family reserved ahead of time that will not be sent after all."""
        if family_id in self.reserved:
            self.reserved.discard(family_id)
            self.state.ledger.release([family_id], "create")

    def release_unsent(self) -> None:
        """Put back every reservation the run never reached (it stopped first)."""
        if self.reserved:
            self.state.ledger.release(sorted(self.reserved), "create")
            self.reserved.clear()

    # -- the create step ---------------------------------------------------------------------

    async def create(self, family: Family, plan: FamilyPlan) -> str | None:
        """The family's case: found, or created; None when recorded as failed or unknown."""
        if plan.reconcile or plan.look_up:
            found = await self._decided(family, uncertain=plan.reconcile)
            if found != "absent":
                return found
        try:
            payload = await build_payload(family, self.state.resolver)
        except BuildError as exc:
            await self._fail(family, Outcome(kind="BuildError", message=exc.message))
            return None
        except AuthError as exc:
            self.state.halt("auth", refused(exc))
            return None
        except ApiError as exc:
            await self._fail(family, outcome_of(exc, f"look-up failed: {exc.message}"))
            return None
        return await self._send(family, payload, final=not plan.steps)

    async def _decided(self, family: Family, *, uncertain: bool) -> str | None:
        """Apply the decision: the case taken, "absent" (send), or None (recorded)."""
        state = self.state
        try:
            verdict = await self.decide(family, uncertain=uncertain)
        except AuthError as exc:
            state.halt("auth", refused(exc))
            return None
        except (Undecided, ApiError) as exc:
            await self._undecided(family, exc, uncertain=uncertain)
            return None
        if verdict.case is None:
            return "absent"
        if verdict.kind == "ours" or state.options.if_exists == "adopt":
            return await self.record(family, verdict.case, adopted=True,
                                     ours=verdict.kind == "ours")
        await self._fail(family, Outcome(kind="CaseExists", message=(
            f"the family's case already exists on the server: {verdict.case}; rerun with "
            "--if-exists adopt to take it over (and run the family's other steps on it), or "
            "--if-exists create to create another")))
        return None

    async def _undecided(self, family: Family, exc: Undecided | ApiError, *,
                         uncertain: bool) -> None:
        """The decision could not be made: an uncertain create stays unknown (never re-sent);
        a first create fails with what to do."""
        fid = family.family_id
        if uncertain:
            what = f"needs review: {exc}" if isinstance(exc, Undecided) else (
                f"could not look the case up: {exc.message}")
            self.state.unknown(fid, "create", what, count=True)
            return
        if isinstance(exc, Undecided):
            outcome = Outcome(kind="NeedsReview", message=(
                f"needs review: {exc}; put the right one in the family's Case Id cell, or "
                "rerun with --if-exists create"))
        else:
            outcome = outcome_of(
                exc, f"could not look for the family's case on the server: {exc.message}")
        await self._fail(family, outcome)

    async def _send(self, family: Family, payload: Mapping[str, Any], *,
                    final: bool) -> str | None:
        """One create attempt: the case name, or None when recorded as failed or unknown.

        When no step follows (*final*), the success rides with the next commit instead of being
        waited for (see ``Ledger.record_created``).
        """
        state, fid = self.state, family.family_id
        if fid in self.reserved:
            self.reserved.discard(fid)  # marked sending with its window (see reserving)
        else:
            await state.ledger.mark_sending(fid, "create", run_id=state.run_id,
                                            proband_sample=state.planner.sample_to_keep(family),
                                            server_at=state.client.clock.now())
        try:
            result = await state.client.create_case(payload)
        except AmbiguousCreate as exc:
            state.unknown(fid, "create", exc.message, exc)
            return await self._after_ambiguous(family)
        except AuthError as exc:
            # 401/403: the server did not act on this request
            state.ledger.record_refused(fid, "create", outcome_of(exc))
            state.halt("auth", refused(exc))
            return None
        except ApiError as exc:
            await state.fail(family, "create", outcome_of(exc))
            return None
        except anyio.get_cancelled_exc_class():
            state.unknown(fid, "create", "cancelled while the create was in flight")
            raise
        assert result is not None  # a real create always answers with a name
        return await self.record(family, result.name, adopted=False, status=result.status,
                                 final=final)

    async def _after_ambiguous(self, family: Family) -> str | None:
        """After a lost answer: take the case if the server already shows it, else leave the
        create unknown. Never re-sent in the same run: a slow server may still be creating it;
        the next run decides again before anything is sent."""
        await anyio.sleep(self.state.options.settle)
        try:
            verdict = await self.decide(family, uncertain=True)
        except (Undecided, ApiError):
            verdict = ABSENT
        if verdict.kind == "ours" and verdict.case is not None:
            return await self.record(family, verdict.case, adopted=True)
        self.state.count_unknown()
        return None

    async def _fail(self, family: Family, outcome: Outcome) -> None:
        self.release(family.family_id)
        await self.state.fail(family, "create", outcome)

    # -- recording ----------------------------------------------------------------------------

    async def record(self, family: Family, case: str, *, adopted: bool, status: int = 201,
                     final: bool = False, ours: bool = True) -> str | None:
        """The family's case is *case*: recorded, unless another family holds it (a conflict,
        recorded as the family's failure); None then. *adopted*: found rather than answered;
        *ours*: made by a create of this ledger (a lost answer's case is; an existing case
        taken over is not, and ``revert`` leaves it alone unless asked)."""
        state, fid = self.state, family.family_id
        self.reserved.discard(fid)
        holder = self.claimed.setdefault(case, fid)
        if holder != fid:
            await self._conflict(family, case, holder)
            return None
        await state.ledger.record_created(fid, case, http_status=status, run_id=state.run_id,
                                          final=final, adopted=not ours)
        if adopted:
            state.summary.adopted += 1
        else:
            state.summary.created += 1
        return case

    async def _conflict(self, family: Family, case: str, holder: str) -> None:
        """A case name answered for a second family: stop this family for good, and hold
        every later step of the family that held it (the case may now be either's patient)."""
        self.conflicts[case] = (holder, family.family_id)
        state = self.state
        await state.fail(family, "create", _conflict_outcome(case, holder), case=case)
        record = state.ledger.family(holder)
        later = [s for s, r in (record.steps.items() if record else ())
                 if s != "create" and r.state is not State.SUCCEEDED]
        for step in later:
            await state.ledger.record_failed(holder, step,
                                             _conflict_outcome(case, family.family_id),
                                             case_name=case, run_id=state.run_id)

    def holds_conflict(self, case: str | None) -> bool:
        """Whether *case* was answered for two families (no step may run on it)."""
        return case is not None and case in self.conflicts

    async def hold(self, family: Family, step: str, case: str) -> None:
        """Record *step* of *family* held: its case was answered for another family too."""
        holder, claimant = self.conflicts[case]
        other = claimant if family.family_id == holder else holder
        await self.state.fail(family, step, _conflict_outcome(case, other), case=case)

    # -- the decision -------------------------------------------------------------------------

    async def decide(self, family: Family, *, uncertain: bool) -> Verdict:
        """Which case on the server is *family*'s (see the module docstring).

        *uncertain*: an earlier create may have reached the server. ``Undecided`` when the
        evidence does not tell; ``ApiError`` when the server could not be asked.
        """
        state = self.state
        record = state.ledger.family(family.family_id)
        samples = _samples(family, record)
        if not samples:
            if uncertain:
                raise Undecided("the proband has no BioSample Name to look its case up by")
            return ABSENT  # nothing to look it up by; the create goes ahead as the official CLI's
        if uncertain:
            self._refuse_twins(family)
        create = record.create if record else None
        reference = create.server_started_at if uncertain and create else None
        candidates = await self._candidates(family, samples)
        held = [c.case for c in candidates if c.holder is not None]
        if held:  # the family's sample in a case another family holds: recorded as a conflict
            return Verdict("ours", held[0])
        if uncertain:
            ours = [c.case for c in candidates if self._made_by(family, c, reference)]
            if len(ours) > 1:
                raise Undecided(f"cases {', '.join(ours)} were all created for this family's "
                                "sample since the lost create")
            if ours:
                return Verdict("ours", ours[0])
        matching = [c.case for c in candidates if c.matches]
        if state.options.if_exists == "create":
            if uncertain and reference is None and matching:
                raise Undecided(f"case {matching[0]} matches this family, and whether the lost "
                                "create made it cannot be told (no server time was recorded)")
            return ABSENT
        if len(matching) > 1:
            raise Undecided(f"cases {', '.join(matching)} all match this family")
        return Verdict("exists", matching[0]) if matching else ABSENT

    def _made_by(self, family: Family, found: _Candidate, reference: float | None) -> bool:
        """Whether the lost create of *family*, begun at server time *reference*, made it."""
        if reference is None:
            return found.matches and self.state.options.if_exists != "create"
        if found.created is None or found.created < reference - self.state.options.reconcile_skew:
            return False
        return found.matches or not self.state.planner.twins(family)

    async def _candidates(self, family: Family, samples: Sequence[str]) -> list[_Candidate]:
        """Every readable case whose proband is one of *samples*, but those a twin holds."""
        found: list[_Candidate] = []
        seen: set[str] = set()
        key = family_key(family)
        for sample in samples:
            for case, holder in await self._cases_of(sample, family.family_id):
                if case in seen:
                    continue
                seen.add(case)
                try:
                    data = await self.state.client.get_case(case)
                except NotFound:
                    continue  # the sample names a case that is gone (or not ours to read)
                if data.get("status") == "trash":
                    continue  # in the trash (reverted): no family's case any more
                if sample in _samples_of(_proband_of(data)):
                    matches = key is not None and key == case_key(data, key[0])
                    found.append(_Candidate(case, matches, _created(data), holder))
        return found

    async def _cases_of(self, sample: str, family_id: str) -> list[tuple[str, str | None]]:
        """The cases a sample look-up names, each with the other family of the ledger that
        holds it (None: none does); a case a twin holds (a family of the same proband sample,
        whose case it rightly is) is left out."""
        cases: list[tuple[str, str | None]] = []
        for hit in await self.state.client.find_samples(sample, exact=True):
            case = str(hit.get("note") or "")
            if not case.startswith("EMG"):
                continue
            holder = self.claimed.get(case, family_id)
            if holder == family_id:
                cases.append((case, None))
            elif not self._is_twin(holder, sample):
                cases.append((case, holder))
        return cases

    def _is_twin(self, family_id: str, sample: str) -> bool:
        """Whether *family_id* (another family) has *sample* as its proband too."""
        record = self.state.ledger.family(family_id)
        return record is not None and record.proband_sample == sample

    def _refuse_twins(self, family: Family) -> None:
        """Two uncertain families of the same proband sample and content cannot be told apart:
        whose case the server holds is not known."""
        key = family_key(family)
        state = self.state
        for twin in state.planner.twins(family):
            record = state.ledger.family(twin.family_id)
            create = record.create if record else None
            uncertain = create is not None and create.state in (State.SENDING, State.UNKNOWN)
            if uncertain and key is not None and family_key(twin) == key:
                raise Undecided(f"family {twin.family_id} has the same proband sample and "
                                "content and its create is uncertain too: their cases cannot "
                                "be told apart")


def _conflict_outcome(case: str, other: str) -> Outcome:
    return Outcome(kind=CONFLICT, message=(
        f"the server answered with case {case} for family {other} too: the server has probably "
        "forgotten its cases (a test tenant reset, a sandbox restarted) and gave the name "
        "again. Nothing more is done on this case; check both families in Emedgene, and use a "
        "new --ledger for a server that was reset"))


def _samples(family: Family, record: FamilyRecord | None) -> list[str]:
    """The proband samples to look up: the one sent (the ledger's) and the manifest's."""
    sent = record.proband_sample if record else ""
    return [s for s in dict.fromkeys((sent, family.proband_sample)) if s]


def _created(data: Mapping[str, Any]) -> float | None:
    """The case's creation time on the server's clock (RFC 1123), or None."""
    try:
        return parsedate_to_datetime(str(data.get("created"))).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# -- what tells a family's case apart ---------------------------------------------------------

Key = tuple[str, str, int, tuple[str, ...]]


def is_this_family(family: Family, data: Mapping[str, Any]) -> bool:
    """Whether the case object *data* holds *family*: same proband sample, case type, gene
    list and relatives' samples."""
    key = family_key(family)
    return key is not None and key == case_key(data, key[0])


def family_key(family: Family) -> Key | None:
    """What tells a family's case apart: proband sample, case type, gene list, relatives."""
    proband = family.proband
    if proband is None or not family.proband_sample:
        return None
    listed = proband.get("Gene List Id").strip()
    relatives = sorted(row.get("BioSample Name") for row in family.rows
                       if row is not proband and row.get("BioSample Name"))
    return (family.proband_sample, proband.get("Case Type"),
            int(listed) if is_integer(listed) else 1, tuple(relatives))


def case_key(data: Mapping[str, Any], sample: str) -> Key | None:
    """The same key read from a case object, for the proband *sample* (None: not its proband)."""
    patients = data.get("patients")
    if not isinstance(patients, dict) or sample not in _samples_of(patients.get("proband")):
        return None
    return (sample, str(data.get("type") or ""), _int(data.get("gene_list_id"), 1),
            tuple(_relatives(patients)))


def _proband_of(data: Mapping[str, Any]) -> Any:
    patients = data.get("patients")
    return patients.get("proband") if isinstance(patients, dict) else None


def _samples_of(patient: Any) -> set[str]:
    if not isinstance(patient, dict):
        return set()
    return {str(patient[k]) for k in ("fastq_sample", "pending_sample_name") if patient.get(k)}


def _relatives(patients: Mapping[str, Any]) -> list[str]:
    others = patients.get("other") if isinstance(patients.get("other"), list) else []
    members = [patients.get("mother"), patients.get("father"), *(others or [])]
    return sorted(name for member in members for name in _samples_of(member))


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else default

