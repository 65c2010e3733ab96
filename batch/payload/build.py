"""The ``POST /api/cases/v2/cases`` body, exactly as the official CLI v36 builds it (BEHAVIOUR §3).

Family-level values come from the proband row only; keys whose value would be ``undefined`` in
JavaScript are absent. Expects a family that passed ``check_family``.
"""

from __future__ import annotations

from typing import Any

from batch.errors import BuildError, ResolveError
from batch.manifest import KNOWN_COLUMNS, Family, Row, split_items
from batch.payload.checks import View
from batch.payload.files import sample_type_of
from batch.payload.lookups import Lookups
from batch.payload.resolve import Resolver
from batch.payload.rules import BAM_SUFFIXES, GENDERS, last_segment


def _phenotypes(row: Row) -> tuple[str | None, list[str]]:
    """``("id" | "name" | None, values)`` of a member's phenotypes."""
    ids = split_items(row.get("Phenotypes Id"))
    if ids:
        return "id", [item.replace("HP:", "phenotypes/EMG_PHENOTYPE_", 1) for item in ids]
    if row.get("Phenotypes").strip().lower() == "unaffected":
        return None, []
    return "name", split_items(row.get("Phenotypes"))


def _patient(
    view: View, row: Row, key: str, relationship: str, proband_terms: tuple[str | None, set[str]]
) -> dict[str, Any]:
    has_files = bool(row.get("Files Names"))
    name = row.get("BioSample Name")
    kind, values = _phenotypes(row)
    patient: dict[str, Any] = {
        "id": key,
        "fastq_sample": name if has_files else "",
        "pending_sample_name": "" if has_files else name,
        "gender": GENDERS.get(row.get(view.sex_column).lower(), "Unknown"),
        "relationship": relationship,
    }
    if row is view.proband:
        patient["healthy"] = not values
        patient["phenotypes"] = [{kind or "name": value} for value in values]
    else:
        related = [kind == proband_terms[0] and value in proband_terms[1] for value in values]
        patient["healthy"] = not any(related)
        patient["phenotypes"] = [
            {kind or "name": value, "related": flag}
            for value, flag in zip(values, related, strict=True)
        ]
    if row.get("Date Of Birth"):
        patient["date_of_birth"] = row.get("Date Of Birth")
    return patient


def _patients(view: View) -> tuple[dict[str, Any], list[Row]]:
    """``patients`` and the member rows in payload order."""
    proband = view.proband
    assert proband is not None
    kind, values = _phenotypes(proband)
    terms = (kind, set(values))
    mother = next((r for r in view.rows if view.relation(r) == "mother"), None)
    father = next((r for r in view.rows if view.relation(r) == "father"), None)
    siblings = [r for r in view.rows if view.relation(r) == "sibling"]
    parents = {"mother": "mother"} if mother else {}
    if father:
        parents["father"] = "father"
    patients: dict[str, Any] = {
        "proband": {**_patient(view, proband, "proband", "Test Subject", terms), **parents}
    }
    if mother:
        patients["mother"] = _patient(view, mother, "mother", "Mother", terms)
    if father:
        patients["father"] = _patient(view, father, "father", "Father", terms)
    if siblings:
        patients["other"] = [
            {
                **_patient(view, row, "sibling" if i == 0 else f"sibling_{i}", "Sibling", terms),
                **parents,
            }
            for i, row in enumerate(siblings)
        ]
    members = [proband, *(r for r in (mother, father) if r), *siblings]
    return patients, members


async def _file_entry(
    row: Row, path: str, lookups: Lookups, basespace: bool, storage_id: int
) -> dict[str, Any]:
    filename = last_segment(path)
    if basespace:
        try:
            filename = await lookups.alias(storage_id, path)
        except ResolveError as exc:
            raise BuildError(exc.message) from None
    return {
        "path": path,
        "filename": filename,
        "size": 0,
        "status": "uploaded",
        "storage_id": storage_id,
    }


async def _sample(row: Row, lookups: Lookups, sample_type: str) -> dict[str, Any]:
    files = row.get("Files Names")
    name = row.get("BioSample Name")
    if files == "existing":
        hit = await lookups.resolver.find_sample(name)
        if hit is None:
            raise BuildError(f"BioSample Name {name} is not an existing sample")
        return {"id": hit["id"], "fastq": name}
    # An absent cell (ragged row) leaves ``fastq`` out; an empty one sends "".
    sample: dict[str, Any] = {"fastq": name} if "BioSample Name" in row.cells else {}
    sample.update({"status": "uploaded", "sampleFiles": []})
    if not files:
        return sample
    storage_id = int(row.get("Storage Provider Id").strip())
    try:
        basespace = (await lookups.storage(storage_id)).get("scheme") == "basespace"
    except ResolveError as exc:
        raise BuildError(exc.message) from None
    entries: list[dict[str, Any]] = []
    if files == "auto":
        found = await lookups.auto_files(storage_id, row.get("Default Project"), name)
        for path, alias in found or []:
            entries.append(
                {
                    "path": path,
                    "filename": alias,
                    "size": 0,
                    "status": "uploaded",
                    "storage_id": storage_id,
                }
            )
    else:
        for path in split_items(files):
            entries.append(await _file_entry(row, path, lookups, basespace, storage_id))
    if sample_type == "vcf":
        for entry in entries:
            entry["vcf_column_name"] = name
        await _add_visualization(row, lookups, basespace, storage_id, sample, entries)
    sample["sampleFiles"] = entries
    return sample


async def _add_visualization(
    row: Row,
    lookups: Lookups,
    basespace: bool,
    storage_id: int,
    sample: dict[str, Any],
    entries: list[dict[str, Any]],
) -> None:
    for path in split_items(row.get("Visualization Files")):
        entry = await _file_entry(row, path, lookups, basespace, storage_id)
        if entry["filename"].endswith(BAM_SUFFIXES):
            sample["bam_location"] = path
            sample["storage_id"] = storage_id
        else:
            entries.append(
                {key: entry[key] for key in ("filename", "path", "size", "status", "storage_id")}
            )


def _test_data_head(proband: Row, sample_type: str) -> dict[str, Any]:
    gene_list = int(proband.get("Gene List Id").strip() or "1")
    sequence_info: dict[str, int] = {}
    if proband.get("Kit Id"):
        sequence_info["kit_id"] = int(proband.get("Kit Id").strip())
    if proband.get("Intersect Bed Id"):
        sequence_info["intersect_bed_id"] = int(proband.get("Intersect Bed Id").strip())
    data: dict[str, Any] = {
        "boostGenes": proband.get("Boost Genes").strip().lower() == "true",
        "labels": [int(item) for item in split_items(proband.get("Label Id"))],
        "sample_type": sample_type,
        "type": proband.get("Case Type"),
        "sequence_info": sequence_info,
        "gene_list": {"id": gene_list, "type": "all" if gene_list == 1 else "existing"},
    }
    if "Selected Preset" in proband.cells:
        data["selected_preset_set"] = proband.cells["Selected Preset"]
    if proband.get("Due Date"):
        data["due_date"] = proband.get("Due Date")
    if "Clinical Notes" in proband.cells:
        data["notes"] = proband.cells["Clinical Notes"]
    data["extra_data"] = {
        name: value for name, value in proband.cells.items() if name not in KNOWN_COLUMNS and value
    }
    return data


async def build_payload(family: Family, resolver: Resolver) -> dict[str, Any]:
    """The create body the official CLI v36 sends for this family (BEHAVIOUR §3).

    Expects a family that passed ``check_family``; raises ``BuildError`` (for the proband row)
    when a look-up fails while building.
    """
    view = View(family)
    proband = view.proband
    if proband is None:
        raise BuildError("Relation proband is required")
    lookups = Lookups(resolver)
    sample_type = await sample_type_of(view.proband, lookups)
    data = _test_data_head(proband, sample_type)
    patients, members = _patients(view)
    data["patients"] = patients
    data["samples"] = [
        await _sample(row, lookups, sample_type)
        for row in members
        if row is proband or row.get("Files Names")
    ]
    execute_now = proband.get("Execute Now").strip().lower()
    opt_in = proband.get("Opt In").strip().lower()
    return {
        "should_upload": bool(execute_now) and execute_now != "true",
        "test_data": data,
        "sharing_level": 0 if opt_in == "false" else 1,
    }
