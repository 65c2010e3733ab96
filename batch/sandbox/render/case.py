"""``GET /api/test/{case}/``: the case object, with every top-level key of the real one.

Filled from the create body and the case's life; where a key's content cannot be derived (the
organization's settings, ``checked_presets``, ``benderStatus`` words...) a plausible value of
the real type stands in [inferred]. ``reports`` and ``preset_groups`` are not on the real
object: they are added only when the sandbox is asked for its extras.
"""

from __future__ import annotations

import time
from typing import Any

from batch.sandbox import tenant
from batch.sandbox.phenotypes import record
from batch.sandbox.render import people
from batch.sandbox.render.samples import SampleView, case_samples, is_pending
from batch.sandbox.render.values import date_field, flag, integer, listed, text, when
from batch.sandbox.state import Case, SandboxState, rfc1123

JsonObj = dict[str, Any]


def gene_list(td: JsonObj, state: SandboxState) -> JsonObj:
    """``gene_list_id``, ``geneListName``, ``geneListVisible`` and ``genes``."""
    sent = td.get("gene_list")
    gl: JsonObj = sent if isinstance(sent, dict) else {}
    kind, gid = gl.get("type", "all"), integer(gl.get("id")) or 1
    if kind == "existing":
        info = state.fixture.gene_list_info.get(gid, {})
        name = info.get("name") or f"Gene list {gid}"
        genes = [{"name": g} for g in info.get("genes", [])]
    elif kind == "new":
        name = text(gl.get("name"), "New gene list")
        genes = [g if isinstance(g, dict) else {"name": str(g)} for g in listed(gl.get("genes"))]
    else:
        name, genes = "All genes", []
    return {"gene_list_id": gid, "geneListName": name, "genes": genes,
            "geneListVisible": flag(gl.get("visible"), True)}


def _labels(td: JsonObj) -> list[JsonObj]:
    ids = [i for i in map(integer, listed(td.get("labels"))) if i is not None]
    return [{"id": i, "name": f"Label {i}"} for i in ids]


def _sequence_info(td: JsonObj) -> JsonObj:
    raw = td.get("sequence_info")
    return {k: integer(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def signing(case: Case) -> JsonObj:
    """Who finalized the case, when, and the presets they checked (null until finalized)."""
    signer = case.signer
    if signer is None:
        return {"signer": None, "signing_date": None, "signing_notes": "", "checked_presets": {}}
    checked = {"checked": True, "user_id": signer.id, "user_name": signer.name}
    return {"signer": signer.ref(), "signing_date": when(case.signed), "signing_notes": "",
            "checked_presets": {name: dict(checked) for name in tenant.CHECKED_PRESETS}}


def clinical(td: JsonObj) -> JsonObj:
    """The clinical fields, as sent or with the real object's empty values."""
    penetrance = td.get("disease_penetrance")
    number = isinstance(penetrance, int | float) and not isinstance(penetrance, bool)
    # 100.0, a float, as the real object writes it (the body may send the integer 100).
    return {
        "analysisType": text(td.get("analysis_type")), "boostGenes": flag(td.get("boostGenes")),
        "consanguinity": flag(td.get("consanguinity")),
        "disease_penetrance": float(penetrance) if number and penetrance is not None else 100.0,
        "disease_severity": text(td.get("disease_severity")),
        "diseases": listed(td.get("diseases")),
        "due_date": date_field(td.get("due_date")), "gene_interpretation": "",
        "incidental_findings": text(td.get("incidental_findings"), "No"),
        "indication_for_testing": text(td.get("indication_for_testing")),
        "inheritance_modes": listed(td.get("inheritance_modes")), "labels": _labels(td),
        "notes": text(td.get("notes")), "preset_comment": "", "recommendations": "",
        "selected_preset_set": text(td.get("selected_preset_set"), "Default"),
        "sequence_info": _sequence_info(td), "type": text(td.get("type")),
        "sample_type": text(td.get("sample_type")),
    }


def life(case: Case, now: float) -> JsonObj:
    """Identity, status and dates."""
    return {
        "id": case.id, "name": case.name, "status": case.status,
        "status_change_date": rfc1123(case.status_change), "status_info": None,
        "created": rfc1123(case.created), "delivered_date": when(case.delivered),
        "last_access_date": rfc1123(now), "creator": case.creator.ref(),
        "participants": case.participants, "group_participants": {},
        "benderStatus": SampleView(case, tenant.alias(), case.delivered is not None).bender,
        "pipeline_version": None, "quality": None, "resolved": 0, "finalized_variants": [],
        "sharing_level": _sharing(case.payload),
    }


def _sharing(payload: JsonObj) -> int:
    # Emedgene's script sends no sharing_level; the real object shows 1 [inferred default].
    sent = integer(payload.get("sharing_level"))
    return 1 if sent is None else sent


def family(case: Case, state: SandboxState) -> JsonObj:
    """``patients``, ``samples`` and ``phenotypes``."""
    td = case.payload["test_data"]
    raw = td.get("patients") if isinstance(td.get("patients"), dict) else {}
    view = SampleView(case, tenant.alias(), case.delivered is not None)
    pending = [people.sample_name(p) for _, p in people.members(raw) if is_pending(p)]
    samples = case_samples(view, pending)
    return {"patients": people.patients(raw, samples, state.phenotypes),
            "samples": list(samples.values()),
            "phenotypes": [record(t) for t in people.case_terms(raw, state.phenotypes)]}


def case_object(case: Case, state: SandboxState, *, extras: bool = False,
                now: float | None = None) -> JsonObj:
    """The whole case object; *extras* adds the emulator-only ``reports`` and
    ``preset_groups``."""
    td = case.payload["test_data"]
    out = {**life(case, time.time() if now is None else now), **clinical(td),
           **gene_list(td, state), **signing(case), **family(case, state),
           "organization": tenant.organization()}
    if extras:
        out["reports"] = case.reports
        out["preset_groups"] = [{"id": g["id"], "name": g["name"]} for g in case.preset_groups]
    return out
