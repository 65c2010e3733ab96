"""The route table: every emulated route, its handler and the tag it is documented under."""

from __future__ import annotations

from batch.sandbox import api, extras, introspect, lookups
from batch.sandbox.config import SandboxConfig
from batch.sandbox.openapi import SPEC_PATH, Route, spec

# Tags: Cases and Reports are the real documentation's; the others are inferred.
ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/auth/v2/api_login", api.login, "Auth", public=True),
    Route("POST", "/api/auth/api_login", api.legacy_login, "Auth", public=True),
    Route("POST", "/api/cases/v2/cases", api.create_case, "Cases"),
    Route("GET", "/api/test", api.list_cases, "Cases"),
    Route("GET", "/api/test/{case}", api.get_case, "Cases"),
    Route("PUT", "/api/test/{case}", api.set_status, "Cases"),
    Route("GET", "/api/test/{case}/info", api.case_info, "Cases"),
    Route("POST", "/api/test/{case}/preset_group", extras.preset_group, "Presets"),
    Route("GET", "/api/test/{case}/export", extras.export, "Candidates"),
    Route("GET", "/api/test/v2/{case}/reports", extras.report_listing, "Reports"),
    Route("GET", "/api/test/v2/{case}/reports/{type}/{id}", extras.report, "Reports"),
    Route("GET", "/api/candidates/{case}", extras.candidates, "Candidates"),
    Route("POST", "/api/participant/{case}", extras.assign, "Participants"),
    Route("GET", "/api/user/org_users", extras.org_users, "Users"),
    Route("GET", "/api/organization/users", extras.organization_users, "Users"),
    Route("GET", "/api/sample", lookups.samples, "Samples"),
    Route("GET", "/api/phenotype", lookups.phenotypes, "Phenotypes"),
    Route("GET", "/api/storage/{id}", lookups.storage, "Storage"),
    Route("GET", "/api/storage/{id}/fs/list", lookups.fs_list, "Storage"),
    Route("GET", SPEC_PATH, spec, "Docs", public=True),
    Route("GET", "/_sandbox/cases", introspect.cases, "Sandbox"),
    Route("GET", "/_sandbox/stats", introspect.stats, "Sandbox"),
    Route("POST", "/_sandbox/faults", introspect.faults, "Sandbox"),
    Route("POST", "/_sandbox/advance", introspect.advance, "Sandbox"),
)
#: Served only when ``SandboxConfig.report_listing`` is on.
REPORT_LISTING = "/api/test/v2/{case}/reports"


def served(config: SandboxConfig) -> list[Route]:
    """The routes a sandbox with *config* serves."""
    return [r for r in ROUTES if config.report_listing or r.path != REPORT_LISTING]


def public_paths(routes: list[Route]) -> frozenset[str]:
    """Paths answered without a token (the logins and the API document)."""
    return frozenset(r.path for r in routes if r.public)
