"""The OpenAPI 3 document of what the sandbox emulates, built from its route table.

Served at ``GET /api/apidoc/openapi.json`` [inferred location: Emedgene's Swagger UI is at
``/api/apidoc/swagger`` and its operation ids follow the spectree library's scheme
(``post__api_cases_v2_cases``), whose default spec URL is ``/api/apidoc/openapi.json``].
Path parameters carry the names the real documentation uses (``case_name``,
``report_type``, ``report_id``; ``storage_id`` by the same rule).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from batch.sandbox.responses import json_answer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PARAM = re.compile(r"\{(\w+)\}")
SPEC_PATH = "/api/apidoc/openapi.json"


@dataclass(frozen=True, slots=True)
class Route:
    """One emulated route: method, path (no trailing slash; both forms are served), handler,
    the tag it is listed under, and whether it is served without a token."""

    method: str
    path: str
    handler: Handler
    tag: str
    public: bool = False

    @property
    def spec_path(self) -> str:
        """The path with the documentation's parameter names."""
        segments = self.path.split("/")
        out = []
        for i, segment in enumerate(segments):
            found = _PARAM.fullmatch(segment)
            out.append(segment if found is None else "{" + _name(found[1], segments[:i]) + "}")
        return "/".join(out)

    @property
    def operation_id(self) -> str:
        """spectree's operation id: ``<method>_<path with / as _>``."""
        return f"{self.method.lower()}_{self.spec_path.replace('/', '_')}"


def _name(param: str, before: list[str]) -> str:
    """``case`` → ``case_name``; other names take the last literal segment before them
    (singular) as a prefix: ``/reports/{type}/{id}`` → ``report_type``, ``report_id``."""
    if param == "case":
        return "case_name"
    literal = next(s for s in reversed(before) if s and not _PARAM.fullmatch(s))
    return f"{literal.removesuffix('s')}_{param}"


ROUTES_KEY: web.AppKey[list[Route]] = web.AppKey("sandbox_routes", list)


def _operation(route: Route) -> dict[str, object]:
    doc = (route.handler.__doc__ or "").strip().splitlines()
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in _PARAM.findall(route.spec_path)]
    op: dict[str, object] = {"operationId": route.operation_id, "tags": [route.tag],
                             "summary": doc[0] if doc else route.operation_id,
                             "responses": {"200": {"description": "OK"}}}
    if params:
        op["parameters"] = params
    if route.public:
        op["security"] = []
    return op


def document(routes: Iterable[Route]) -> dict[str, object]:
    """The OpenAPI document of the ``/api`` routes."""
    paths: dict[str, dict[str, object]] = {}
    for route in routes:
        if route.path.startswith("/api/"):
            paths.setdefault(route.spec_path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Emedgene API (emg-batch sandbox)", "version": "1"},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }


async def spec(request: web.Request) -> web.Response:
    """``GET /api/apidoc/openapi.json``: this document."""
    routes: list[Route] = request.app[ROUTES_KEY]
    return json_answer(document(routes))
