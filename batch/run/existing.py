"""Is this family's case already on the server? Asked before a family's first create, so a lost
ledger, or an earlier import with the official CLI or the web UI, never yields a second case.

The proband's sample is looked up (``GET /api/sample/?query=…&exact_match=true``; a hit's
``note`` is its case) and each case found is read (``GET /api/test/{case}/``). A case is this
family's when its proband is that sample and its key fields match the family's: case type,
gene list and the relatives' samples. A case of the same sample with other content is a
reanalysis (samples are reused across cases, and ``existing`` names such samples on purpose)
and blocks nothing. Costs one request per family, plus one per case found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batch.errors import NotFound
from batch.manifest import Family
from batch.payload.rules import is_integer
from batch.run.context import RunContext, Undecided


async def existing_case(ctx: RunContext, family: Family) -> str | None:
    """The case on the server that is *family*'s, or None; ``Undecided`` when several are."""
    sample = family.proband_sample
    if not sample:
        return None  # nothing to look it up by; the create goes ahead as the official CLI's
    found: list[str] = []
    for hit in await ctx.client.find_samples(sample, exact=True):
        case = str(hit.get("note") or "")
        if not case.startswith("EMG") or case in found:
            continue
        if ctx.claimed.get(case, family.family_id) != family.family_id:
            continue  # another family of this ledger owns it
        try:
            data = await ctx.client.get_case(case)
        except NotFound:
            continue  # the sample names a case that is gone (or not ours to read)
        if data.get("status") != "trash" and is_this_family(family, data):
            found.append(case)  # a case in the trash (reverted) is never the family's
    if len(found) > 1:
        raise Undecided(f"cases {', '.join(found)} all match this family")
    return found[0] if found else None


def is_this_family(family: Family, data: Mapping[str, Any]) -> bool:
    """Whether the case object *data* holds *family*: same proband sample, case type, gene
    list and relatives' samples."""
    key = family_key(family)
    return key is not None and key == case_key(data, key[0])


Key = tuple[str, str, int, tuple[str, ...]]


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
