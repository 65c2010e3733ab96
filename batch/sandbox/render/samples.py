"""Samples as the server shows them (``samples[]`` and each patient's ``samples[]``).

The request's snake_case sample (``fastq``, ``storage_id``, ``sampleFiles[].path``...) becomes
the server's record: a numeric ``id``, ``sampleType``, ``storage_provider_id``,
``directoryPath`` ``<org>/upload/<case>/<sample>``, the pipeline's ``benderStatus`` with its
times, and files with ``filename`` (the path sent), ``storageProviderId``, ``vcfColumnName``,
``metadata.result``. Once a case is delivered, a FASTQ sample also lists the pipeline's
outputs (``storageProviderId`` and ``metadata`` null), as the real finalized trio does.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from batch.sandbox.render.values import integer, listed, text
from batch.sandbox.state import Case, rfc1123

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

