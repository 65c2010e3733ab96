"""``emg-batch doctor``: read-only, passes on the sandbox, flags what a tenant lacks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner

from batch.api import Client, Credentials
from batch.cli import main
from batch.jobs import Target, doctor_job
from batch.jobs.doctor import OPERATIONS, DoctorReport
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    demo_fixture_path,
    run_sandbox,
)
from tests.cases import minimal_payload
from tests.test_real_case import Tenant

CREDENTIALS = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)


def verdicts(report: DoctorReport) -> dict[str, str]:
    return {c.name: c.verdict for c in report.checks}


def test_doctor_sandbox_passes() -> None:
    result = CliRunner().invoke(main, ["doctor", "--sandbox", "--json"],
                                env={"EMG_HOST": "", "EMG_TOKEN": ""})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["compatible"] is True
    names = {c["name"]: c["verdict"] for c in report["checks"]}
    assert names == dict.fromkeys(("login", "openapi", "recent case", "case listing",
                                   "report discovery", "sample look-up", "org users",
                                   "storage", "rate limit"), "ok")


async def test_doctor_writes_nothing_to_a_tenant(tmp_path: Path) -> None:
    async with run_sandbox(SandboxConfig(fixture=demo_fixture_path(), advance_after=0)) as sb:
        async with Client(sb.url, credentials=CREDENTIALS) as client:
            await client.create_case(minimal_payload("DOC-1"))
        async with aiohttp.ClientSession() as session, \
                session.get(f"{sb.url}/_sandbox/stats") as resp:
            before = (await resp.json())["requests"]
        report = await doctor_job(Target(host=sb.url, credentials=CREDENTIALS))
        async with aiohttp.ClientSession() as session, \
                session.get(f"{sb.url}/_sandbox/stats") as resp:
            after = (await resp.json())["requests"]
    assert report.compatible
    sent = {route for route, codes in after.items()
            if sum(codes.values()) > sum(before.get(route, {}).values())}
    assert sent and all(r.startswith("GET ") or r.startswith("POST /api/auth") for r in sent)


@pytest.fixture
async def real_tenant() -> AsyncIterator[str]:
    runner = web.AppRunner(Tenant().app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_a_tenant_with_only_the_real_case_shape_lacks_report_discovery(
    real_tenant: str,
) -> None:
    report = await doctor_job(Target(host=real_tenant, credentials=CREDENTIALS))
    found = verdicts(report)
    assert found["recent case"] == "ok"  # the real object has every field emg-batch reads
    assert found["report discovery"] == "failed"
    assert found["sample look-up"] == "ok"
    assert report.exit_code == 1
    message = next(c for c in report.checks if c.name == "report discovery")
    assert "--report-id" in message.meaning


async def _openapi_tenant(paths: dict[str, Any]) -> tuple[web.AppRunner, str]:
    tenant = Tenant()
    app = tenant.app()

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response({"openapi": "3.0.0", "paths": paths})

    app.router.add_get("/api/apidoc/openapi.json", openapi)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.mark.slow
async def test_an_operation_missing_from_the_openapi_document_fails() -> None:
    paths: dict[str, Any] = {}
    for method, path in OPERATIONS:
        named = path.replace("{}", "{case_name}", 1).replace("{}", "{x}")
        paths.setdefault(named + ("/" if method == "get" else ""), {})[method] = {}
    runner, url = await _openapi_tenant(paths)
    try:
        complete = await doctor_job(Target(host=url, credentials=CREDENTIALS))
        assert verdicts(complete)["openapi"] == "ok"
    finally:
        await runner.cleanup()
    paths.pop("/api/sample/")
    runner, url = await _openapi_tenant(paths)
    try:
        lacking = await doctor_job(Target(host=url, credentials=CREDENTIALS))
    finally:
        await runner.cleanup()
    check = next(c for c in lacking.checks if c.name == "openapi")
    assert check.verdict == "failed" and "GET /api/sample" in check.found


async def test_doctor_reports_an_advertised_rate_limit() -> None:
    config = SandboxConfig(rate_limit=50, rate_limit_headers=True)
    async with run_sandbox(config) as sb:
        report = await doctor_job(Target(host=sb.url, credentials=CREDENTIALS))
    found = {c.name: c.found for c in report.checks}
    assert found["rate limit"] == "the answers advertise 50 requests a second"
