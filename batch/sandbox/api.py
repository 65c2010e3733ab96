"""Handlers of the emulated Emedgene API (everything under ``/api``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from batch.sandbox import candidates as cand
from batch.sandbox import render
from batch.sandbox.responses import INVALID, canned, json_answer, message, read_json
from batch.sandbox.runtime import DROP, USER, runtime
from batch.sandbox.state import SYSTEM_STATUSES, USER_STATUSES, Case, rfc1123
from batch.sandbox.validation import Invalid, proband_sample, validate_case

LIST_SIZE_DEFAULT = 20
LIST_SIZE_MAX = 100


class BadQuery(Exception):
    """A query parameter has a bad value."""


def _int_param(request: web.Request, key: str, default: int) -> int:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{key} must be an integer") from None
    if value < 0:
        raise BadQuery(f"{key} must not be negative")
    return value


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    body = await read_json(request)
    if body is INVALID:
        return message(400, "Malformed JSON body")
    if not isinstance(body, dict):
        return message(400, "Request body must be a JSON object")
    return body


def _case_or_404(request: web.Request) -> Case | web.Response:
    name = request.match_info["case"]
    case = runtime(request).case(name)
    return case if case is not None else message(404, f"Test {name} not found")


async def _case_and_body(request: web.Request) -> tuple[Case, dict[str, Any]] | web.Response:
    """The case named in the path and the JSON object body, or the error answer."""
    case = _case_or_404(request)
    if isinstance(case, web.Response):
        return case
    body = await _json_object(request)
    return body if isinstance(body, web.Response) else (case, body)


# -- auth ---------------------------------------------------------------------------------


async def _login_token(request: web.Request) -> str | web.Response:
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    token = runtime(request).state.login(body.get("username"), body.get("password"))
    return token if token is not None else message(401, "Invalid credentials")


async def login(request: web.Request) -> web.Response:
    """``POST /api/auth/v2/api_login/``."""
    token = await _login_token(request)
    if isinstance(token, web.Response):
        return token
    token_type = runtime(request).state.fixture.token_type
    return json_answer({"access_token": token, "token_type": token_type})


async def legacy_login(request: web.Request) -> web.Response:
    """``POST /api/auth/api_login/``: the whole header value."""
    token = await _login_token(request)
    if isinstance(token, web.Response):
        return token
    return json_answer({"Authorization": f"Bearer {token}"})


# -- cases --------------------------------------------------------------------------------


async def create_case(request: web.Request) -> web.Response:
    """``POST /api/cases/v2/cases?dry_run=true|false``."""
    rt = runtime(request)
    dry = request.query.get("dry_run", "false").lower()
    if dry not in ("true", "false"):
        return message(400, "dry_run must be true or false")
    body = await read_json(request)
    if body is INVALID:
        return message(400, "Malformed JSON body")
    fixture = rt.state.fixture
    try:
        validate_case(body, storages=fixture.storages)
    except Invalid as problem:
        return message(400, str(problem))
    sample = proband_sample(body) or ""
    override = (fixture.dry_run_errors if dry == "true" else fixture.create_errors).get(sample)
    if override is not None:
        return canned(override.status, override.body)
    if dry == "true":
        return json_answer({"Status": "Success"})
    case = rt.state.create_case(body, sample, request[USER])
    if rt.config.advance_after == 0:
        rt.tick()
    if rt.faults.drop_after_commit > 0 and rt.rng.random() < rt.faults.drop_after_commit:
        request[DROP] = True
    return json_answer({"Status": "Success", "name": case.name, "id": case.id}, 201)


async def get_case(request: web.Request) -> web.Response:
    """``GET /api/test/{case}/``."""
    case = _case_or_404(request)
    return case if isinstance(case, web.Response) else json_answer(render.case_object(case))


async def case_info(request: web.Request) -> web.Response:
    """``GET /api/test/{case}/info``."""
    case = _case_or_404(request)
    return case if isinstance(case, web.Response) else json_answer(render.case_info(case))


async def set_status(request: web.Request) -> web.Response:
    """``PUT /api/test/{case}`` with ``{"status": s}``: user statuses only, after delivery."""
    found = await _case_and_body(request)
    if isinstance(found, web.Response):
        return found
    case, body = found
    status = body.get("status")
    if not isinstance(status, str):
        return message(400, "status is required")
    if status in SYSTEM_STATUSES:
        return message(400, f"Status {status} is set by the system and cannot be set by a user")
    if status not in USER_STATUSES:
        return message(400, f"Unknown status: {status}")
    if status != "trash" and case.delivered is None:
        return message(409, f"Case {case.name} is not delivered yet")
    rt = runtime(request)
    change = rt.state.set_status(case, status)
    if change is not None and rt.notifier is not None:
        rt.notifier.send([change])
    return json_answer({"name": case.name, "status": case.status,
                        "status_change_date": rfc1123(case.status_change)})


def _since(request: web.Request) -> float | None:
    raw = request.query.get("from_status_change_date")
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise BadQuery("from_status_change_date must be an ISO 8601 date") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


async def list_cases(request: web.Request) -> web.Response:
    """``GET /api/test?status=S&from_status_change_date=ISO&from=F&size=Z``."""
    rt = runtime(request)
    try:
        since = _since(request)
        start = _int_param(request, "from", 0)
        size = min(_int_param(request, "size", LIST_SIZE_DEFAULT), LIST_SIZE_MAX)
    except BadQuery as problem:
        return message(400, str(problem))
    statuses = set(request.query.getall("status", []))
    rt.tick()
    hits = [c for c in rt.state.cases.values()
            if (not statuses or c.status in statuses)
            and (since is None or c.status_change >= since)]
    page = [render.case_summary(c) for c in hits[start:start + size]]
    return json_answer({"hits": page, "total": len(hits)})


# -- people and case extras ---------------------------------------------------------------


async def org_users(request: web.Request) -> web.Response:
    """``GET /api/user/org_users/``."""
    users = [u.summary() for u in runtime(request).state.users.values()]
    return json_answer({"hits": users, "total": len(users)})


async def assign(request: web.Request) -> web.Response:
    """``POST /api/participant/{case}`` with ``{"action": "assign", "ids": [...]}``."""
    found = await _case_and_body(request)
    if isinstance(found, web.Response):
        return found
    case, body = found
    ids = body.get("ids")
    if body.get("action") != "assign":
        return message(400, "action must be 'assign'")
    if not isinstance(ids, list) or not all(type(i) is int for i in ids):
        return message(400, "ids must be a list of user ids")
    users = runtime(request).state.users_by_id
    unknown = [i for i in ids if i not in users]
    if unknown:
        return message(400, f"Unknown user id(s): {', '.join(map(str, unknown))}")
    present = {p["id"] for p in case.participants}
    for i in ids:
        if i not in present:
            case.participants.append({"id": i, "name": users[i].name})
            present.add(i)
    return json_answer({"participants": case.participants})


def _preset_problem(body: dict[str, Any], gene_lists: frozenset[int] | None) -> str | None:
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        return "name is required"
    search = body.get("filter", {}).get("search") if isinstance(body.get("filter"), dict) else None
    if not isinstance(search, list) or not all(isinstance(s, dict) for s in search):
        return "filter.search must be a list of objects"
    for item in search:
        if item.get("type") != "gene list":
            continue
        gid = item.get("id")
        if type(gid) is not int and not (isinstance(gid, str) and gid.isdigit()):
            return f"Invalid gene list id: {gid!r}"
        if gene_lists is not None and int(gid) not in gene_lists:
            return f"Gene list {gid} does not exist"
    return None


async def preset_group(request: web.Request) -> web.Response:
    """``POST /api/test/{case}/preset_group``."""
    found = await _case_and_body(request)
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
    case = _case_or_404(request)
    if isinstance(case, web.Response):
        return case
    hits = cand.candidates(case)
    return json_answer({"hits": hits, "total": len(hits)})


async def export(request: web.Request) -> web.Response:
    """``GET /api/test/{case}/export/``."""
    case = _case_or_404(request)
    if isinstance(case, web.Response):
        return case
    return json_answer({"variants": cand.export_variants(case)})


async def report(request: web.Request) -> web.Response:
    """``GET /api/test/v2/{case}/reports/{type}/{id}``: finalized cases only."""
    case = _case_or_404(request)
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


# -- look-ups -----------------------------------------------------------------------------


async def samples(request: web.Request) -> web.Response:
    """``GET /api/sample/?query=&sampleType=&exact_match=true``.

    ``sampleType`` is accepted but does not filter: clients look members of VCF cases up with
    ``sampleType=fastq`` too.
    """
    query = request.query.get("query", "")
    exact = request.query.get("exact_match", "false").lower() == "true"
    hits = runtime(request).state.find_samples(query, exact=exact)
    return json_answer({"total": len(hits), "hits": hits})


async def storage(request: web.Request) -> web.Response:
    """``GET /api/storage/{id}``."""
    sid = request.match_info["id"]
    found = runtime(request).state.fixture.storages.get(sid)
    if found is None:
        return message(404, f"Storage provider {sid} not found")
    return json_answer(found)


async def fs_list(request: web.Request) -> web.Response:
    """``GET /api/storage/{id}/fs/list?from=F&size=S&path=P`` over the fixture's trees."""
    fixture = runtime(request).state.fixture
    sid = request.match_info["id"]
    if sid not in fixture.storages:
        return message(404, f"Storage provider {sid} not found")
    try:
        start = _int_param(request, "from", 0)
        size = min(_int_param(request, "size", fixture.fs_page_size_max), fixture.fs_page_size_max)
    except BadQuery as problem:
        return message(400, str(problem))
    raw_path = request.query.get("path", "")
    entries = fixture.fs.get(sid, {}).get("/" + raw_path.strip("/"))
    if entries is None:
        return message(404, f"Path {raw_path} not found")
    return json_answer({"resources": entries[start:start + size],
                        "has_more": start + size < len(entries)})
