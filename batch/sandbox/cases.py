"""Handlers of the emulated Emedgene API: logins and cases (create, read, status, listing)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from batch.sandbox import render
from batch.sandbox.params import BadQuery, case_and_body, case_or_404, int_param, json_object
from batch.sandbox.responses import INVALID, canned, json_answer, message, read_json
from batch.sandbox.runtime import DROP, USER, runtime
from batch.sandbox.state import SYSTEM_STATUSES, USER_STATUSES, User, rfc1123
from batch.sandbox.validation import Invalid, proband_sample, validate_case

LIST_SIZE_DEFAULT = 20
LIST_SIZE_MAX = 100


# -- auth ---------------------------------------------------------------------------------


async def _login_user(request: web.Request) -> User | web.Response:
    body = await json_object(request)
    if isinstance(body, web.Response):
        return body
    user = runtime(request).state.login(body.get("username"), body.get("password"))
    return user if user is not None else message(401, "Invalid credentials")


async def login(request: web.Request) -> web.Response:
    """``POST /api/auth/v2/api_login/``: an opaque token."""
    user = await _login_user(request)
    if isinstance(user, web.Response):
        return user
    state = runtime(request).state
    return json_answer({"access_token": state.opaque_token(user),
                        "token_type": state.fixture.token_type})


async def legacy_login(request: web.Request) -> web.Response:
    """``POST /api/auth/api_login/``: the whole header value, ``Bearer <JWT>``."""
    user = await _login_user(request)
    if isinstance(user, web.Response):
        return user
    rt = runtime(request)
    return json_answer({"Authorization": f"Bearer {rt.state.jwt_token(user, rt.faults.token_ttl)}"})


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
    """``GET /api/test/{case}/``: the case object, keys sorted as the real server sorts them
    (a case in the trash too, with ``status`` ``trash``: inferred)."""
    case = case_or_404(request)
    if isinstance(case, web.Response):
        return case
    rt = runtime(request)
    data = render.case_object(case, rt.state, extras=rt.config.case_extras)
    return json_answer(data, sort_keys=True)


async def case_info(request: web.Request) -> web.Response:
    """``GET /api/test/{case}/info``."""
    case = case_or_404(request)
    return case if isinstance(case, web.Response) else json_answer(render.case_info(case))


async def set_status(request: web.Request) -> web.Response:
    """``PUT /api/test/{case}`` with ``{"status": s}``: user statuses only, after delivery."""
    found = await case_and_body(request)
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
    change = rt.state.set_status(case, status, by=request[USER])
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
        start = int_param(request, "from", 0)
        size = min(int_param(request, "size", LIST_SIZE_DEFAULT), LIST_SIZE_MAX)
    except BadQuery as problem:
        return message(400, str(problem))
    statuses = set(request.query.getall("status", []))
    rt.tick()
    # a case in the trash is listed only when asked for by status (inferred: the web app
    # shows the trash bin as a view of its own)
    hits = [c for c in rt.state.cases.values()
            if (c.status in statuses if statuses else c.status != "trash")
            and (since is None or c.status_change >= since)]
    page = [render.case_summary(c) for c in hits[start:start + size]]
    return json_answer({"hits": page, "total": len(hits)})
