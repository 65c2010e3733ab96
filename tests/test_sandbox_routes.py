"""The sandbox's routes: the report listing, the OpenAPI document, the provenance of every route,
and the command line (``--bind``, examples, the record file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from batch.cli.sandbox import sandbox_command
from batch.sandbox import SandboxConfig
from batch.sandbox.app import ROUTES
from tests.provenance import SANDBOX
from tests.test_sandbox import Api, _serving
from tests.test_sandbox_shape import script_body

REPO = Path(__file__).resolve().parent.parent


async def _finalized(api: Api) -> str:
    name: str = (await api.create(script_body("case1")))[1]["name"]
    await api.call("POST", "/_sandbox/advance", {"case": name, "status": "delivered"})
    return name


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async for a, _ in _serving(SandboxConfig()):
        yield a


# -- report listing -----------------------------------------------------------------------


async def test_report_listing_shows_reports_of_finalized_cases_only(api: Api) -> None:
    name = await _finalized(api)
    for path in (f"/api/test/v2/{name}/reports", f"/api/test/v2/{name}/reports/"):
        assert (await api.call("GET", path))[:2] == (200, {"hits": [], "total": 0})
    assert (await api.call("PUT", f"/api/test/{name}", {"status": "finalized"}))[0] == 200
    status, listing, _ = await api.call("GET", f"/api/test/v2/{name}/reports/")
    assert status == 200 and listing["total"] == 2
    assert {r["type"] for r in listing["hits"]} == {"pdf", "json"}
    for hit in listing["hits"]:
        assert isinstance(hit["id"], int) and hit["created"].endswith(" GMT")
        got = await api.call("GET", f"/api/test/v2/{name}/reports/{hit['type']}/{hit['id']}")
        assert got[0] == 200
    missing = await api.call("GET", "/api/test/v2/EMG999999999/reports")
    assert missing[:2] == (404, {"message": "Test EMG999999999 not found"})


async def test_report_listing_can_be_turned_off() -> None:
    async for api, _ in _serving(SandboxConfig(report_listing=False)):
        name = await _finalized(api)
        await api.call("PUT", f"/api/test/{name}", {"status": "finalized"})
        assert (await api.call("GET", f"/api/test/v2/{name}/reports"))[0] == 404
        spec = (await api.call("GET", "/api/apidoc/openapi.json"))[1]
        assert "/api/test/v2/{case_name}/reports" not in spec["paths"]


# -- OpenAPI and provenance ---------------------------------------------------------------


async def test_openapi_lists_every_route_with_spectree_ids(api: Api) -> None:
    status, spec, _ = await api.call("GET", "/api/apidoc/openapi.json", headers={})  # no token
    assert status == 200 and spec["openapi"].startswith("3.")
    ops = {op["operationId"]: op for item in spec["paths"].values() for op in item.values()}
    api_routes = [r for r in ROUTES if r.path.startswith("/api/")]
    assert len(ops) == len(api_routes)
    for route in api_routes:
        op = spec["paths"][route.spec_path][route.method.lower()]
        assert op["operationId"] == route.operation_id and op["tags"] == [route.tag]
    assert ops["post__api_cases_v2_cases"]["tags"] == ["Cases"]
    report = "get__api_test_v2_{case_name}_reports_{report_type}_{report_id}"
    assert ops[report]["tags"] == ["Reports"]
    assert [p["name"] for p in ops[report]["parameters"]] == ["case_name", "report_type",
                                                              "report_id"]
    assert "get__api_storage_{storage_id}_fs_list" in ops


def test_every_route_has_its_provenance() -> None:
    for route in ROUTES:
        key = f"{route.method} {route.path}"
        entries = [b for b in SANDBOX if b.what.startswith(key + ":")]
        assert entries, f"{key} is not in tests.provenance.SANDBOX"
    assert {b.known for b in SANDBOX} == {"confirmed", "inferred"}
    assert all(b.source for b in SANDBOX)


# -- command line -------------------------------------------------------------------------


def test_help_has_examples_and_bind() -> None:
    result = CliRunner().invoke(sandbox_command, ["--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output and "emg-batch sandbox --port 8765" in result.output
    assert "--bind" in result.output and "--host" not in result.output
    for option in ("--token-ttl", "--expired-status", "--case-extras", "--no-report-listing"):
        assert option in result.output, option


def test_bind_refuses_a_remote_address_and_host_is_deprecated() -> None:
    result = CliRunner().invoke(sandbox_command, ["--bind", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2 and "--allow-remote" in result.output
    assert "deprecated" not in result.output
    result = CliRunner().invoke(sandbox_command, ["--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2 and "deprecated" in result.stderr and "--bind" in result.stderr


@pytest.mark.parametrize("args", [["--token-ttl", "nan"], ["--latency-ms", "inf"],
                                  ["--expired-status", "500"]])
def test_bad_numbers_are_usage_errors(args: list[str]) -> None:
    assert CliRunner().invoke(sandbox_command, [*args, "--port", "0"]).exit_code == 2


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--bind", "--host"])
def test_the_command_serves_on_the_bind_address(flag: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "batch", "sandbox", flag, "127.0.0.1",
                             "--port", "0"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert "Emedgene sandbox at http://127.0.0.1:" in proc.stdout.readline()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert ("deprecated" in err) is (flag == "--host")


async def test_the_record_file_gets_each_line_as_it_happens(tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    old = os.umask(0)
    try:
        serving = _serving(SandboxConfig(record=record))
        api, _ = await serving.__anext__()
    finally:
        os.umask(old)
    try:
        assert record.stat().st_mode & 0o777 == 0o600  # request bodies are patient data
        lines = record.read_text(encoding="utf-8").splitlines()
        assert json.loads(lines[-1])["path"] == "/api/auth/v2/api_login/"
        assert (await api.create(script_body("case1"), dry=True))[0] == 200
        lines = record.read_text(encoding="utf-8").splitlines()  # no flush, no stop
        assert json.loads(lines[-1])["query"] == [["dry_run", "true"]]
    finally:
        await serving.aclose()
