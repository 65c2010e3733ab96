"""The JSON shapes of stored cases, as the API answers them.

Small conversions shared by the renderers: typed values out of a create body, dates.

Samples as the server shows them (``samples[]`` and each patient's ``samples[]``).

The request's snake_case sample (``fastq``, ``storage_id``, ``sampleFiles[].path``...) becomes
the server's record: a numeric ``id``, ``sampleType``, ``storage_provider_id``,
``directoryPath`` ``<org>/upload/<case>/<sample>``, the pipeline's ``benderStatus`` with its
times, and files with ``filename`` (the path sent), ``storageProviderId``, ``vcfColumnName``,
``metadata.result``. Once a case is delivered, a FASTQ sample also lists the pipeline's
outputs (``storageProviderId`` and ``metadata`` null), as the real finalized trio does.

Patients as the server shows them: the body's members with the keys the server adds.

Each patient carries ``samples[]`` (its sample's server record), ``dead``, ``ignore``,
``notes``, ``quality``, ``zygosity``, ``other_family_data_key`` (its place: ``proband``,
``mother``, ``father``; ``other`` for the rest) and ``other_family_data_sample``. Patient ids
are the ones the body sent: the real object's parent ids (``other58e9``) look made by the
client that created the case (a browser form), not by the server [inferred].

Short views of stored cases: ``/info``, a hit of the case listing, the introspection entry.

``GET /api/test/{case}/``: the case object, with every top-level key of the real one.

Filled from the create body and the case's life; where a key's content cannot be derived (the
organization's settings, ``checked_presets``, ``benderStatus`` words...) a plausible value of
the real type stands in [inferred]. ``reports`` and ``preset_groups`` are not on the real
object: they are added only when the sandbox is asked for its extras.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from batch.sandbox.phenotypes import Phenotypes, Term, record
from batch.sandbox.state import CHECKED_PRESETS, Case, SandboxState, alias, organization, rfc1123


def text(value: Any, default: str = "") -> str:
    """*value* when it is a string, else *default*."""
    return value if isinstance(value, str) else default


def flag(value: Any, default: bool = False) -> bool:
    """*value* when it is a boolean, else *default*."""
    return value if isinstance(value, bool) else default


def integer(value: Any) -> int | None:
    """An integer id, also when sent as a numeric string (as Emedgene's own script does)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def listed(value: Any) -> list[Any]:
    """*value* when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def when(ts: float | None) -> str | None:
    """An RFC 1123 date, or None."""
    return rfc1123(ts) if ts is not None else None


def date_field(value: Any) -> str | None:
    """A ``YYYY-MM-DD`` date of the body as the API writes dates (RFC 1123); as sent when it is
    no calendar date (the server stores e.g. ``2023-02-30`` as given); None when absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        day = datetime.strptime(value.replace("/", "-"), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return value
    return rfc1123(day.timestamp())


JsonObj = dict[str, Any]

#: File type by name suffix, longest first (the official CLI's classes and the real types).
FILE_TYPES = (
    (".target.counts.bw", "targetcounts-bw"), (".metrics.tar.gz", "dragen-metrics"),
    (".baf.bw", "baf-bw"), (".roh.bed", "roh-bed"), (".bw", "bw"),
    (".fastq.gz", "fastq"), (".fq.gz", "fastq"), (".fastq", "fastq"), (".fq", "fastq"),
    (".ora", "fastq"), (".gvcf.gz", "vcf"), (".vcf.gz", "vcf"), (".gvcf", "vcf"),
    (".vcf", "vcf"), (".bam", "bam"), (".cram", "bam"),
)
#: What the pipeline leaves per FASTQ sample (the real trio's ten outputs).
OUTPUTS = (
    ("bed_coverage_metrics.csv", "cov-csv"), ("cnv.vcf.gz", "vcf"),
    ("hard-filtered.baf.bw", "baf-bw"), ("hard-filtered.gvcf.gz", "vcf"),
    ("mapping_metrics.csv", "map-csv"), ("ploidy_estimation_metrics.csv", "pem-csv"),
    ("repeats.vcf.gz", "vcf"), ("roh.bed", "roh-bed"), ("sv.vcf.gz", "vcf"), ("tn.bw", "bw"),
)
PIPELINE = "dragen/sandbox_dragen4.0-hg38/varcaller"


@dataclass(frozen=True, slots=True)
class SampleView:
    """What every sample of one case shares: the case, the organization, the pipeline's state."""

    case: Case
    org: str
    analysed: bool  # the pipeline has run (the case was delivered)

    @property
    def bender(self) -> str:
        """The pipeline's status (inferred words besides the real ``finished``)."""
        if self.case.status in ("in_progress", "reanalysis"):
            return "running"
        return "finished" if self.analysed else "waiting"


def file_type(name: str, default: str) -> str:
    """A file's ``sampleType`` from its name; *default* when the name says nothing."""
    lower = name.lower()
    return next((kind for suffix, kind in FILE_TYPES if lower.endswith(suffix)), default)


def _file_size(path: str, sent: Any) -> int:
    size = integer(sent)
    # Sizes are sent as 0; the server measures the file. A stable made-up size, 1-5 GB.
    return size if size else 1_000_000_000 + zlib.crc32(path.encode()) % 4_000_000_000


def input_file(view: SampleView, raw: Any, sample_type: str) -> JsonObj:
    """One file the create body named."""
    f = raw if isinstance(raw, dict) else {}
    path = text(f.get("path")) or text(f.get("filename"))
    kind = text(f.get("sample_type")) or file_type(text(f.get("filename")) or path, sample_type)
    stamp = rfc1123(view.case.created)
    gz = (text(f.get("filename")) or path).endswith(".gz")
    result = {"file_size": _file_size(path, f.get("size")), "is_available": True,
              "is_gzip": gz, "is_valid_gzip": gz}
    return {"bytesTransferred": 0, "end": stamp, "filename": path, "lastUpdated": stamp,
            "md5": "", "metadata": {"result": result}, "percentage": 0, "sampleType": kind,
            "size": integer(f.get("size")) or 0, "start": stamp,
            "status": text(f.get("status"), "uploaded"),
            "storageProviderId": integer(f.get("storage_id")),
            "vcfColumnName": f.get("vcf_column_name") if isinstance(
                f.get("vcf_column_name"), str) else None}


def output_files(view: SampleView, name: str) -> list[JsonObj]:
    """The pipeline's outputs of one FASTQ sample."""
    stamp = rfc1123(view.case.delivered or view.case.created)
    return [{"bytesTransferred": 0, "end": stamp,
             "filename": f"{view.org}/{name}/vcf/{PIPELINE}/{name}.dragen.{suffix}",
             "lastUpdated": stamp, "md5": "", "metadata": None, "percentage": 0,
             "sampleType": kind, "size": 0, "start": stamp, "status": "uploaded",
             "storageProviderId": None, "vcfColumnName": name} for suffix, kind in OUTPUTS]


def sample_type_of(view: SampleView, raw: JsonObj) -> str:
    """The sample's ``sampleType``: as sent per sample, else the case's (``fastq`` if none)."""
    sent = text(raw.get("sample_type"))
    return sent or text(view.case.payload["test_data"].get("sample_type")) or "fastq"


def server_sample(view: SampleView, raw: JsonObj, *, pending: bool = False) -> JsonObj:
    """The server's record of one sample of the create body (or of a pending member)."""
    case, name = view.case, text(raw.get("fastq"))
    kind = sample_type_of(view, raw)
    files = [input_file(view, f, kind) for f in listed(raw.get("sampleFiles"))]
    fastq = kind == "fastq" and not pending
    if view.analysed and fastq:
        files += output_files(view, name)
    started = case.reached.get("in_progress", case.created)
    return {
        "bam_location": _bam(view, raw, name, fastq), "benderStatus": view.bender,
        "benderStatusLastUpdate": rfc1123(case.delivered or started),
        "benderStatusStartTime": rfc1123(started),
        "directoryPath": f"{view.org}/upload/{case.name}/{name}", "fastq": name,
        "id": integer(raw.get("id")) or case.sample_ids.get(name, 0),
        "is_baf_exists": view.analysed and fastq,
        "is_bigwig_exists": any(f["sampleType"] == "bw" for f in files),
        "is_roh_exists": view.analysed and fastq, "sampleFiles": files, "sampleType": kind,
        "status": "pending" if pending else text(raw.get("status"), "uploaded"),
        "statusLastUpdate": rfc1123(case.created),
        "storage_provider_id": integer(raw.get("storage_id")),
    }


def _bam(view: SampleView, raw: JsonObj, name: str, fastq: bool) -> str:
    sent = text(raw.get("bam_location"))
    if sent or not (view.analysed and fastq):
        return sent
    return f"{view.org}/{name}/Mapper/sandbox-hg38/{name}.cram"


def case_samples(view: SampleView, pending: list[str]) -> dict[str, JsonObj]:
    """Sample name → server record: the body's samples in order, then pending members'."""
    out: dict[str, JsonObj] = {}
    for raw in listed(view.case.payload["test_data"].get("samples")):
        out.setdefault(text(raw.get("fastq")), server_sample(view, raw))
    for name in pending:
        if name not in out:
            out[name] = server_sample(view, {"fastq": name, "status": "pending"}, pending=True)
    return out


def is_pending(patient: JsonObj) -> bool:
    """A member named only by ``pending_sample_name`` (no data yet)."""
    return not text(patient.get("fastq_sample")) and bool(text(patient.get("pending_sample_name")))


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
            "checked_presets": {name: dict(checked) for name in CHECKED_PRESETS}}


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
        "benderStatus": SampleView(case, alias(), case.delivered is not None).bender,
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
    view = SampleView(case, alias(), case.delivered is not None)
    pending = [sample_name(p) for _, p in members(raw) if is_pending(p)]
    samples = case_samples(view, pending)
    return {"patients": patients(raw, samples, state.phenotypes),
            "samples": list(samples.values()),
            "phenotypes": [record(t) for t in case_terms(raw, state.phenotypes)]}


def case_object(case: Case, state: SandboxState, *, extras: bool = False,
                now: float | None = None) -> JsonObj:
    """The whole case object; *extras* adds the emulator-only ``reports`` and
    ``preset_groups``."""
    td = case.payload["test_data"]
    out = {**life(case, time.time() if now is None else now), **clinical(td),
           **gene_list(td, state), **signing(case), **family(case, state),
           "organization": organization()}
    if extras:
        out["reports"] = case.reports
        out["preset_groups"] = [{"id": g["id"], "name": g["name"]} for g in case.preset_groups]
    return out
