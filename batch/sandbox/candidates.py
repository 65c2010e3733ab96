"""Tagged variants and report files, generated deterministically from a case name."""

from __future__ import annotations

import json
import random
from typing import Any

from batch.sandbox.state import Case, rfc1123

JsonObj = dict[str, Any]

TAGS = ("most_likely", "to_be_reported", "research_candidate", "in_report", "carrier", "incidental")
_GENES = (
    ("CFTR", "chr7", 117559590, "NM_000492.4"),
    ("SCN1A", "chr2", 165991235, "NM_001165963.4"),
    ("BRCA1", "chr17", 43094464, "NM_007294.4"),
    ("MECP2", "chrX", 154030912, "NM_004992.4"),
    ("KCNQ2", "chr20", 63439620, "NM_172107.4"),
    ("STXBP1", "chr9", 127663356, "NM_003165.6"),
    ("CDKL5", "chrX", 18604245, "NM_001323289.2"),
    ("PCDH19", "chrX", 100291644, "NM_001184880.2"),
    ("DMD", "chrX", 31119222, "NM_004006.3"),
    ("SMN1", "chr5", 70925030, "NM_000344.4"),
)
_BASES = "ACGT"
_ZYGOSITY = ("het", "hom", "hemi")
_AMINO = ("Arg", "Gly", "Leu", "Ser", "Trp", "Gln", "Pro", "Ter")


def candidates(case: Case) -> list[JsonObj]:
    """The case's tagged variants; the same case name always gives the same list."""
    rng = random.Random(case.name)
    hits = []
    for gene, chrom, pos, transcript in rng.sample(_GENES, rng.randint(2, 6)):
        pos += rng.randint(0, 5000)
        ref = rng.choice(_BASES)
        alt = rng.choice([b for b in _BASES if b != ref])
        codon = rng.randint(10, 1500)
        hits.append({
            "gene": gene,
            "variant": f"{chrom}:{pos} {ref}>{alt}",
            "transcript": transcript,
            "hgvs_c": f"c.{codon * 3 - rng.randint(0, 2)}{ref}>{alt}",
            "hgvs_p": f"p.{rng.choice(_AMINO)}{codon}{rng.choice(_AMINO)}",
            "zygosity": rng.choice(_ZYGOSITY),
            "tag": rng.choice(TAGS),
            "tagged_by": case.creator.name,
            "tagged_at": rfc1123(case.created),
        })
    return hits


def export_variants(case: Case) -> list[JsonObj]:
    """``GET /api/test/{case}/export/`` rows, from the same candidates."""
    return [
        {"tag": {"value": c["tag"]}, "gene_name": c["gene"], "variant_details": c["variant"],
         "transcript": c["transcript"], "hgvs_c": c["hgvs_c"], "hgvs_p": c["hgvs_p"]}
        for c in candidates(case)
    ]


def report_json(case: Case) -> bytes:
    """The JSON report of a finalized case."""
    doc = {"case_name": case.name, "status": case.status,
           "finalized": rfc1123(case.status_change), "variants": candidates(case)}
    return json.dumps(doc).encode()


def report_pdf(case: Case) -> bytes:
    """A minimal, valid one-page PDF naming the case."""
    text = f"Emedgene sandbox report {case.name}".encode()
    stream = b"BT /F1 18 Tf 72 720 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
