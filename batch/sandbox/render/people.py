"""Patients as the server shows them: the body's members with the keys the server adds.

Each patient carries ``samples[]`` (its sample's server record), ``dead``, ``ignore``,
``notes``, ``quality``, ``zygosity``, ``other_family_data_key`` (its place: ``proband``,
``mother``, ``father``; ``other`` for the rest) and ``other_family_data_sample``. Patient ids
are the ones the body sent: the real object's parent ids (``other58e9``) look made by the
client that created the case (a browser form), not by the server [inferred].
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from batch.sandbox.phenotypes import Phenotypes, Term
from batch.sandbox.render.samples import is_pending
from batch.sandbox.render.values import flag, listed, text

JsonObj = dict[str, Any]

SLOTS = {"proband": "Test Subject", "mother": "Mother", "father": "Father"}


def members(patients: JsonObj) -> Iterator[tuple[str, JsonObj]]:
    """``(place, patient)`` of every member: the three slots, then ``other`` in order."""
    for slot in SLOTS:
        if isinstance(patients.get(slot), dict):
            yield slot, patients[slot]
    for other in listed(patients.get("other")):
        if isinstance(other, dict):
            yield "other", other


def sample_name(patient: JsonObj) -> str:
    """The member's sample: ``fastq_sample``, else ``pending_sample_name``."""
    return text(patient.get("fastq_sample")) or text(patient.get("pending_sample_name"))


def terms(patient: JsonObj, phenotypes: Phenotypes) -> list[Term]:
    """The member's phenotypes, resolved against the tenant's HPO terms."""
    return [phenotypes.resolve(p) for p in listed(patient.get("phenotypes"))]


def patient(place: str, raw: JsonObj, samples: dict[str, JsonObj],
            phenotypes: Phenotypes) -> JsonObj:
    """One member as the server shows it."""
    name = sample_name(raw)
    ethnicity = raw.get("detailed_ethnicity")
    out = {
        "date_of_birth": text(raw.get("date_of_birth")), "dead": flag(raw.get("dead")),
        "detailed_ethnicity": (ethnicity if isinstance(ethnicity, dict)
                               else {"maternal": [], "paternal": []}),
        "fastq_sample": name, "gender": text(raw.get("gender"), "Unknown"),
        "healthy": flag(raw.get("healthy")), "id": text(raw.get("id")),
        "ignore": flag(raw.get("ignore")), "notes": text(raw.get("notes")),
        "other_family_data_key": place, "other_family_data_sample": name,
        "phenotypes": [{"id": t.emg_id, "name": t.name} for t in terms(raw, phenotypes)],
        "quality": text(raw.get("quality")),
        "relationship": text(raw.get("relationship")) or SLOTS.get(place, "Other"),
        "samples": [samples[name]] if name in samples else [],
        "zygosity": text(raw.get("zygosity")),
    }
    for parent in ("mother", "father"):
        if isinstance(raw.get(parent), str):
            out[parent] = raw[parent]
    if is_pending(raw):
        out["pending_sample_name"] = name  # no data yet: the name it waits for [inferred]
    return out


def patients(raw: JsonObj, samples: dict[str, JsonObj], phenotypes: Phenotypes) -> JsonObj:
    """``patients``: the slots present, and ``other`` (always a list)."""
    out: JsonObj = {"other": []}
    for place, member in members(raw):
        shown = patient(place, member, samples, phenotypes)
        if place == "other":
            out["other"].append(shown)
        else:
            out[place] = shown
    return out


def case_terms(raw: JsonObj, phenotypes: Phenotypes) -> list[Term]:
    """Every distinct phenotype of the family, in order (the case's ``phenotypes[]``)."""
    seen: dict[str, Term] = {}
    for _place, member in members(raw):
        for term in terms(member, phenotypes):
            seen.setdefault(term.digits, term)
    return list(seen.values())
