"""Look-up handlers: samples, storages and their listings, the phenotype search."""

from __future__ import annotations

from aiohttp import web

from batch.sandbox.params import BadQuery, int_param
from batch.sandbox.responses import json_answer, message
from batch.sandbox.runtime import runtime


async def samples(request: web.Request) -> web.Response:
    """``GET /api/sample/?query=&sampleType=&exact_match=true``.

    ``sampleType`` is accepted but does not filter: clients look members of VCF cases up with
    ``sampleType=fastq`` too.
    """
    query = request.query.get("query", "")
    exact = request.query.get("exact_match", "false").lower() == "true"
    hits = runtime(request).state.find_samples(query, exact=exact)
    return json_answer({"total": len(hits), "hits": hits})


async def phenotypes(request: web.Request) -> web.Response:
    """``GET /api/phenotype/?query=<HPO id or name>``: one hit for a known id; names match
    case-insensitively (name or synonym), the exact name first."""
    total, hits = runtime(request).state.phenotypes.search(request.query.get("query", ""))
    return json_answer({"total": total, "hits": hits})


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
        start = int_param(request, "from", 0)
        size = min(int_param(request, "size", fixture.fs_page_size_max), fixture.fs_page_size_max)
    except BadQuery as problem:
        return message(400, str(problem))
    raw_path = request.query.get("path", "")
    entries = fixture.fs.get(sid, {}).get("/" + raw_path.strip("/"))
    if entries is None:
        return message(404, f"Path {raw_path} not found")
    return json_answer({"resources": entries[start:start + size],
                        "has_more": start + size < len(entries)})
