"""Short views of stored cases: ``/info``, a hit of the case listing, the introspection entry."""

from __future__ import annotations

from typing import Any

from batch.sandbox.state import Case, rfc1123

JsonObj = dict[str, Any]

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
        "reports": case.reports,
        "payload": case.payload,
    }
