"""Test-only endpoints under ``/_sandbox`` (no auth): look inside, change faults, force statuses."""

from __future__ import annotations

from aiohttp import web

from batch.sandbox import render
from batch.sandbox.responses import INVALID, json_answer, message, read_json
from batch.sandbox.runtime import runtime
from batch.sandbox.state import ALL_STATUSES


async def cases(request: web.Request) -> web.Response:
    """``GET /_sandbox/cases``: every case with its create body."""
    rt = runtime(request)
    rt.tick()
    hits = [render.sandbox_case(c) for c in rt.state.cases.values()]
    return json_answer({"hits": hits, "total": len(hits)})


async def stats(request: web.Request) -> web.Response:
    """``GET /_sandbox/stats``: answers per route and status code."""
    rt = runtime(request)
    if rt.recorder is not None:
        rt.recorder.flush()  # a test reading stats may read the record file next
    return json_answer(rt.stats.as_json())


async def faults(request: web.Request) -> web.Response:
    """``POST /_sandbox/faults``: change fault settings; answers the settings in force."""
    rt = runtime(request)
    body = await read_json(request)
    if body is INVALID or not isinstance(body, dict | None):
        return message(400, "Request body must be a JSON object")
    try:
        rt.faults.update(body or {})
    except ValueError as problem:
        return message(400, str(problem))
    return json_answer(rt.faults.as_json())


async def advance(request: web.Request) -> web.Response:
    """``POST /_sandbox/advance`` ``{"case", "status"}``: force a status, rules aside."""
    rt = runtime(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        return message(400, "Request body must be a JSON object")
    name, status = body.get("case"), body.get("status")
    if status not in ALL_STATUSES:
        return message(400, f"Unknown status: {status}")
    case = rt.case(name) if isinstance(name, str) else None
    if case is None:
        return message(404, f"Test {name} not found")
    change = rt.state.set_status(case, status)
    if change is not None and rt.notifier is not None:
        rt.notifier.send([change])
    return json_answer(render.case_summary(case))
