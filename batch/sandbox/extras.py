"""Handlers around a case: people, participants, preset groups, variants and reports."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from batch.sandbox import candidates as cand
from batch.sandbox import tenant
from batch.sandbox.params import case_and_body, case_or_404
from batch.sandbox.responses import json_answer, message
from batch.sandbox.runtime import runtime
from batch.sandbox.validation import as_id

# -- people -------------------------------------------------------------------------------


async def org_users(request: web.Request) -> web.Response:
    """``GET /api/user/org_users/``."""
    users = [u.summary() for u in runtime(request).state.users.values()]
    return json_answer({"hits": users, "total": len(users)})


async def organization_users(request: web.Request) -> web.Response:
    """``GET /api/organization/users/``: the legacy listing, each user with its organization."""
    org = tenant.organization_id()
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
    hits = cand.candidates(case)
    return json_answer({"hits": hits, "total": len(hits)})


async def export(request: web.Request) -> web.Response:
    """``GET /api/test/{case}/export/``."""
    case = case_or_404(request)
    if isinstance(case, web.Response):
        return case
    return json_answer({"variants": cand.export_variants(case)})


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
        return web.Response(body=cand.report_pdf(case), content_type="application/pdf")
    return web.Response(body=cand.report_json(case), content_type="application/json")
