"""Look-up handlers: samples, storages and their listings, the phenotype search."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from batch.sandbox.params import BadQuery, int_param
from batch.sandbox.responses import json_answer, message
from batch.sandbox.runtime import runtime

# a biosample's own folders: BaseSpace biosample ids are global, the project id is not read
_UNDER_BIOSAMPLE = re.compile(r"/projects/[^/]+(/biosamples/[^/]+(?:/.*)?)")
_PROJECT = re.compile(r"/projects/([^/]+)/biosamples/")


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
    entries = _entries(fixture.fs.get(sid, {}), "/" + raw_path.strip("/"))
    if entries is None:
        return message(404, f"Path {raw_path} not found")
    return json_answer({"resources": entries[start:start + size],
                        "has_more": start + size < len(entries)})


def _entries(tree: dict[str, list[Any]], key: str) -> list[Any] | None:
    """The entries of directory *key* ("/" the root), as leniently as real clients show the
    server to be (see ``tests.provenance.SANDBOX``); None when there is no such one."""
    for candidate in _candidates(tree, key):
        found = tree.get(candidate)
        if found is None:  # a folder of folders (the root, a project, ...): its children
            found = _children(tree, candidate)
        if found is not None:
            return found
    return None


def _candidates(tree: dict[str, list[Any]], key: str) -> list[str]:
    """*key*, then the same folder under each project holding its biosample (Emedgene's script
    lists /projects/0000000000/biosamples/{b}/datasets on real tenants)."""
    under = _UNDER_BIOSAMPLE.fullmatch(key)
    if under is None:
        return [key]
    projects = dict.fromkeys(m.group(1) for k in tree if (m := _PROJECT.match(k)))
    return [key, *(f"/projects/{p}{under.group(1)}" for p in projects)]


def _children(tree: dict[str, list[Any]], key: str) -> list[Any] | None:
    """The folders directly inside *key* that the tree lists (each named as its alias), or
    None: the script walks a path from the root ("") down, listing every folder on the way."""
    prefix = key.rstrip("/") + "/"
    names = dict.fromkeys(k[len(prefix):].split("/")[0] for k in tree
                          if k.startswith(prefix) and len(k) > len(prefix))
    return [{"name": name, "alias": name} for name in names] or None
