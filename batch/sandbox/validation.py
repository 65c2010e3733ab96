"""Validation of a case-create body, answering with the first problem as a real server would.

As strict as the real server is known to be, and no stricter: what Emedgene's own batch script
v2.6 sends is accepted (``extra_data: ""``, ids as numeric strings, per-sample ``patient``,
``directoryPath`` and ``sample_type``, repeated sibling ids, ``sample_type: ""`` on a case
without files, no ``sharing_level``), as is everything the official CLI v36 sends.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

CASE_TYPES = frozenset({"Whole Genome", "Exome", "Custom Panel", "Array"})
SAMPLE_TYPES = frozenset({"fastq", "vcf"})
GENDERS = frozenset({"Male", "Female", "Unknown"})
GENE_LIST_TYPES = frozenset({"all", "existing", "new"})
SLOT_RELATIONSHIPS = {"proband": "Test Subject", "mother": "Mother", "father": "Father"}
PHENOTYPE_ID = re.compile(r"phenotypes/EMG_PHENOTYPE_\d{7}")
NOTES_MAX = 4000
DATE = re.compile(r"\d{4}[-/]\d{1,2}[-/]\d{1,2}")


_SLOT_NAMES = frozenset(SLOT_RELATIONSHIPS.values())
_PATIENT_TYPES = (("fastq_sample", str), ("pending_sample_name", str), ("healthy", bool))
_ABSENT: Any = object()


class Invalid(Exception):
    """The body is not a valid case; the message is what the server answers."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_id(value: Any) -> int | None:
    """An integer id, also sent as a string of ASCII digits (``"1"``); else None."""
    if _is_int(value):
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _is_id(value: Any) -> bool:
    return as_id(value) is not None


def _optional(obj: dict[str, Any], key: str, test: Callable[[Any], bool], what: str) -> None:
    if key in obj and not (test(obj[key])):
        raise Invalid(f"{key} must be {what}")


def _date(value: Any) -> bool:
    """A date written ``YYYY-MM-DD`` or ``YYYY/MM/DD`` (month and day may have one digit).

    The calendar is not checked: the server accepts e.g. ``2023-02-30`` on family members.
    """
    return isinstance(value, str) and DATE.fullmatch(value) is not None


def proband_sample(body: Any) -> str | None:
    """The proband's sample name (``fastq_sample``, else ``pending_sample_name``), if any."""
    try:
        proband = body["test_data"]["patients"]["proband"]
        name = proband.get("fastq_sample") or proband.get("pending_sample_name")
    except (KeyError, TypeError, AttributeError):
        return None
    return name if isinstance(name, str) and name else None


def validate_case(body: Any, *, storages: Collection[str]) -> None:
    """Raise :class:`Invalid` with the first problem found in a create body."""
    if not isinstance(body, dict):
        raise Invalid("Request body must be a JSON object")
    _optional(body, "should_upload", lambda v: isinstance(v, bool), "a boolean")
    _optional(body, "sharing_level", lambda v: _is_int(v) and v in (0, 1), "0 or 1")
    for key in ("enrich_disease_phenotypes", "include_incidental_parents"):
        _optional(body, key, lambda v: isinstance(v, bool), "a boolean")
    test_data = body.get("test_data")
    if not isinstance(test_data, dict):
        raise Invalid("test_data is required and must be an object")
    _test_data_fields(test_data)
    _patients(test_data.get("patients"))
    _samples(test_data, storages)


def _test_data_fields(td: dict[str, Any]) -> None:
    if td.get("type") not in CASE_TYPES:
        raise Invalid(f"Invalid case type: {td.get('type')!r}")
    sample_type = td.get("sample_type")
    if sample_type not in SAMPLE_TYPES and not (sample_type == "" and _no_files(td)):
        raise Invalid(f"Invalid sample type: {td.get('sample_type')!r}")
    _optional(td, "boostGenes", lambda v: isinstance(v, bool), "a boolean")
    _optional(td, "labels", lambda v: isinstance(v, list) and all(map(_is_id, v)),
              "a list of integer label ids")
    _optional(td, "notes", lambda v: isinstance(v, str) and len(v) <= NOTES_MAX,
              f"a string of at most {NOTES_MAX} characters")
    _optional(td, "due_date", _date, "a date (YYYY-MM-DD)")
    _optional(td, "extra_data", lambda v: isinstance(v, dict | str), "an object")
    _optional(td, "selected_preset_set", lambda v: v is None or isinstance(v, str), "a string")
    _optional(td, "sequence_info", lambda v: isinstance(v, dict)
              and all(_is_id(x) or x is None for x in v.values()), "an object of integer ids")
    if "gene_list" in td:
        gl = td["gene_list"]
        if not isinstance(gl, dict):
            raise Invalid("gene_list must be an object")
        if gl.get("type") not in GENE_LIST_TYPES:
            raise Invalid(f"Invalid gene list type: {gl.get('type')!r}")
        _optional(gl, "id", _is_id, "an integer")


def _patients(patients: Any) -> None:
    if not isinstance(patients, dict):
        raise Invalid("patients is required and must be an object")
    if not isinstance(patients.get("proband"), dict):
        raise Invalid("patients.proband is required")
    others = patients.get("other", [])
    if not isinstance(others, list):
        raise Invalid("patients.other must be a list")
    slots: list[tuple[str, Any]] = [(s, patients[s]) for s in SLOT_RELATIONSHIPS if s in patients]
    slots += [("other", p) for p in others]
    ids: set[str] = set()
    for slot, patient in slots:
        _patient(slot, patient)
        # Siblings may share an id (Emedgene's script names every one "sibling"); no one
        # may take the id of the proband or of a parent.
        if patient["id"] in ids:
            raise Invalid(f"Duplicate patient id: {patient['id']}")
        if slot != "other":
            ids.add(patient["id"])
    parent_ids = {s: patients[s]["id"] for s in ("mother", "father") if s in patients}
    for _slot, patient in slots:
        for parent in ("mother", "father"):
            if parent in patient and patient[parent] != parent_ids.get(parent):
                ref = patient[parent]
                raise Invalid(f"Patient {patient['id']}: {parent} {ref!r} does not exist")


def _patient(slot: str, p: Any) -> None:
    if not isinstance(p, dict):
        raise Invalid(f"Patient in {slot} must be an object")
    pid = p.get("id")
    if not (type(pid) is str and bool(pid)):
        raise Invalid(f"Patient in {slot} has no id")
    rel = p.get("relationship")
    if slot in SLOT_RELATIONSHIPS:
        ok = rel is None or rel == SLOT_RELATIONSHIPS[slot]
    else:
        ok = type(rel) is str and rel not in _SLOT_NAMES
    if not ok:
        raise Invalid(f"Patient {pid}: invalid relationship {rel!r}")
    if p.get("gender") not in GENDERS:
        raise Invalid(f"Patient {pid}: invalid gender {p.get('gender')!r}")
    for key, kind in _PATIENT_TYPES:
        value = p.get(key, _ABSENT)
        if value is not _ABSENT and type(value) is not kind:
            raise Invalid(f"Patient {pid}: {key} must be a {kind.__name__}")
    if "date_of_birth" in p and not (_date(p["date_of_birth"])):
        raise Invalid(f"Patient {pid}: date_of_birth must be a date")
    phenotypes = p.get("phenotypes", ())
    if not isinstance(phenotypes, list | tuple):
        raise Invalid(f"Patient {pid}: phenotypes must be a list")
    for ph in phenotypes:
        _phenotype(pid, ph)


def _phenotype(pid: str, ph: Any) -> None:
    if not isinstance(ph, dict):
        raise Invalid(f"Patient {pid}: a phenotype must be an object")
    hpo = ph.get("id")
    if hpo is not None:
        ok = type(hpo) is str and PHENOTYPE_ID.fullmatch(hpo) is not None
        if not ok:
            raise Invalid(f"Unmatched phenotype(s) found: {hpo}")
    else:
        name = ph.get("name")
        if not (type(name) is str and bool(name)):
            raise Invalid(f"Patient {pid}: a phenotype needs an id or a name")
    related = ph.get("related", False)
    if type(related) is not bool:
        raise Invalid(f"Patient {pid}: related must be a boolean")


def _no_files(td: dict[str, Any]) -> bool:
    """No sample of the case names a file (its sample type may then be ``""``)."""
    samples = td.get("samples", [])
    return isinstance(samples, list) and not any(
        isinstance(s, dict) and s.get("sampleFiles") for s in samples)


def _storage(value: Any, storages: Collection[str]) -> None:
    sid = as_id(value)
    if sid is None:
        raise Invalid("storage_id must be an integer")
    if str(sid) not in storages:
        raise Invalid(f"Storage provider {sid} not found")


def _samples(td: dict[str, Any], storages: Collection[str]) -> None:
    samples = td.get("samples", [])
    if not isinstance(samples, list):
        raise Invalid("samples must be a list")
    for sample in samples:
        if not isinstance(sample, dict):
            raise Invalid("a sample must be an object")
        if type(sample.get("fastq")) is not str:
            raise Invalid("a sample needs a fastq name")
        if not _is_id(sample.get("id", 0)):
            raise Invalid("a sample id must be an integer")
        if "storage_id" in sample:
            _storage(sample["storage_id"], storages)
        files = sample.get("sampleFiles", [])
        if not isinstance(files, list):
            raise Invalid("sampleFiles must be a list")
        for f in files:
            if not (isinstance(f, dict) and type(f.get("path")) is str):
                raise Invalid("a sample file needs a path")
            if type(f.get("size", 0)) is not int:
                raise Invalid("a sample file size must be an integer")
            _storage(f.get("storage_id"), storages)
