"""Handlers around a case (people, participants, preset groups, variants, reports) and the
tagged variants and report files they serve.

Tagged variants and report files, generated deterministically from a case name.

Handlers around a case: people, participants, preset groups, variants and reports.
"""

from __future__ import annotations

import json
import random
from typing import Any

from aiohttp import web

from batch.sandbox.params import case_and_body, case_or_404
from batch.sandbox.responses import json_answer, message
from batch.sandbox.runtime import runtime
from batch.sandbox.state import Case, organization_id, rfc1123
from batch.sandbox.validation import as_id

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


def tagged_variants(case: Case) -> list[JsonObj]:
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
        for c in tagged_variants(case)
    ]


def report_json(case: Case) -> bytes:
    """The JSON report of a finalized case."""
    doc = {"case_name": case.name, "status": case.status,
           "finalized": rfc1123(case.status_change), "variants": tagged_variants(case)}
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


# -- people -------------------------------------------------------------------------------


async def org_users(request: web.Request) -> web.Response:
    """``GET /api/user/org_users/``."""
    users = [u.summary() for u in runtime(request).state.users.values()]
    return json_answer({"hits": users, "total": len(users)})


async def organization_users(request: web.Request) -> web.Response:
    """``GET /api/organization/users/``: the legacy listing, each user with its organization."""
    org = organization_id()
    users = [{**u.summary(), "organization_id": org}
             for u in runtime(request).state.users.values()]
    return json_answer({"hits": users, "total": len(users)})


async def assign(request: web.Request) -> web.Response:
    """``POST /api/participant/{case}`` with ``{"action": "assign", "ids": [...]}``."""
    found = await case_and_body(request)
    if isinstance(found, web.Response):
        return found
    case, body = found
    raw = body.get("ids")
    if body.get("action") != "assign":
        return message(400, "action must be 'assign'")
    ids = [as_id(i) for i in raw] if isinstance(raw, list) else [None]
    if None in ids:
        return message(400, "ids must be a list of user ids")
    users = runtime(request).state.users_by_id
    unknown = [i for i in ids if i not in users]
    if unknown:
        return message(400, f"Unknown user id(s): {', '.join(map(str, unknown))}")
    present = {p["id"] for p in case.participants}
    for i in ids:
        if i is not None and i not in present:
            case.participants.append(users[i].ref())
            present.add(i)
    return json_answer({"participants": case.participants})


# -- preset groups and variants -----------------------------------------------------------


def _preset_problem(body: dict[str, Any], gene_lists: frozenset[int] | None) -> str | None:
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        return "name is required"
    search = body.get("filter", {}).get("search") if isinstance(body.get("filter"), dict) else None
    if not isinstance(search, list) or not all(isinstance(s, dict) for s in search):
        return "filter.search must be a list of objects"
    for item in search:
        if item.get("type") != "gene list":
            continue
        gid = as_id(item.get("id"))
        if gid is None:
            return f"Invalid gene list id: {item.get('id')!r}"
        if gene_lists is not None and gid not in gene_lists:
            return f"Gene list {gid} does not exist"
    return None


async def preset_group(request: web.Request) -> web.Response:
    """``POST /api/test/{case}/preset_group``."""
    found = await case_and_body(request)
    if isinstance(found, web.Response):
        return found
    case, body = found
    state = runtime(request).state
    problem = _preset_problem(body, state.fixture.gene_lists)
    if problem is not None:
        return message(400, problem)
    return json_answer(state.add_preset_group(case, body), 201)


async def candidates(request: web.Request) -> web.Response:
    """``GET /api/candidates/{case}``."""
    case = case_or_404(request)
    if isinstance(case, web.Response):
        return case
    hits = tagged_variants(case)
    return json_answer({"hits": hits, "total": len(hits)})


async def export(request: web.Request) -> web.Response:
    """``GET /api/test/{case}/export/``."""
    case = case_or_404(request)
    if isinstance(case, web.Response):
        return case
    return json_answer({"variants": export_variants(case)})


# -- reports ------------------------------------------------------------------------------


async def report_listing(request: web.Request) -> web.Response:
    """``GET /api/test/v2/{case}/reports`` [inferred]: the reports of a finalized case."""
    case = case_or_404(request)
    if isinstance(case, web.Response):
        return case
    hits = case.reports if case.status == "finalized" else []
    return json_answer({"hits": hits, "total": len(hits)})


async def report(request: web.Request) -> web.Response:
    """``GET /api/test/v2/{case}/reports/{type}/{id}``: finalized cases only."""
    case = case_or_404(request)
    if isinstance(case, web.Response):
        return case
    if case.status != "finalized":
        return message(409, f"Case {case.name} is not finalized")
    kind, rid = request.match_info["type"], request.match_info["id"]
    if not any(str(r["id"]) == rid and r["type"] == kind for r in case.reports):
        return message(404, f"Report {kind}/{rid} not found")
    if kind == "pdf":
        return web.Response(body=report_pdf(case), content_type="application/pdf")
    return web.Response(body=report_json(case), content_type="application/json")
