"""JSON shapes of stored cases, as the API answers them."""

from __future__ import annotations

from typing import Any

from batch.sandbox.state import Case, rfc1123

JsonObj = dict[str, Any]

_PATIENT_SLOTS = ("proband", "mother", "father")


def _patients(td: JsonObj) -> JsonObj:
    patients = td.get("patients", {})
    out: JsonObj = {s: patients[s] for s in _PATIENT_SLOTS if s in patients}
    out["other"] = patients.get("other", [])
    return out


def case_object(case: Case) -> JsonObj:
    """``GET /api/test/{case}/``: the full case object (a faithful subset of the real one)."""
    td = case.payload["test_data"]
    gene_list = td.get("gene_list") or {"id": 1, "type": "all"}
    return {
        "id": case.id,
        "name": case.name,
        "type": td.get("type"),
        "sample_type": td.get("sample_type"),
        "status": case.status,
        "status_change_date": rfc1123(case.status_change),
        "status_info": None,
        "created": rfc1123(case.created),
        "delivered_date": rfc1123(case.delivered) if case.delivered is not None else None,
        "creator": {"id": case.creator.id, "name": case.creator.name},
        "patients": _patients(td),
        "samples": td.get("samples", []),
        "selected_preset_set": td.get("selected_preset_set"),
        "gene_list_id": gene_list.get("id", 1),
        "boostGenes": td.get("boostGenes", False),
        "sequence_info": td.get("sequence_info", {}),
        "labels": [{"id": n, "name": f"Label {n}"} for n in td.get("labels", [])],
        "notes": td.get("notes", ""),
        "due_date": td.get("due_date"),
        "extra_data": td.get("extra_data", {}),
        "sharing_level": case.payload.get("sharing_level", 1),
        "participants": case.participants,
        "reports": case.reports,
        "preset_groups": [{"id": g["id"], "name": g["name"]} for g in case.preset_groups],
    }


def case_info(case: Case) -> JsonObj:
    """``GET /api/test/{case}/info``."""
    return {
        "name": case.name,
        "status": case.status,
        "created": rfc1123(case.created),
        "creator": {"id": case.creator.id, "name": case.creator.name},
        "last_update": rfc1123(case.status_change),
    }


def case_summary(case: Case) -> JsonObj:
    """One hit of ``GET /api/test``."""
    td = case.payload["test_data"]
    return {
        "id": case.id,
        "name": case.name,
        "status": case.status,
        "status_change_date": rfc1123(case.status_change),
        "created": rfc1123(case.created),
        "type": td.get("type"),
        "sample_type": td.get("sample_type"),
        "proband_sample": case.proband_sample,
    }


def sandbox_case(case: Case) -> JsonObj:
    """One hit of ``GET /_sandbox/cases``."""
    return {
        "name": case.name,
        "id": case.id,
        "proband_sample": case.proband_sample,
        "created": rfc1123(case.created),
        "status": case.status,
        "participants": case.participants,
        "preset_groups": case.preset_groups,
        "payload": case.payload,
    }
