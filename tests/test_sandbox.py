"""The sandbox over real HTTP on loopback: endpoints, validation, lifecycle, webhooks, records."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner

from batch.cli.sandbox import sandbox_command
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    SandboxThread,
    run_sandbox,
)
from tests.corpus import CONFORMANCE_DIR

CORPUS = CONFORMANCE_DIR
CREATE = "/api/cases/v2/cases"
FIXTURE = CORPUS / "fixture.json"


def payloads(name: str = "v001_random_5fam") -> list[dict[str, Any]]:
    """Real create bodies from the conformance corpus."""
    lines = (CORPUS / f"{name}.expected.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["payload"] for line in lines]


class Api:
    """A tiny client for the tests: logs in, sends JSON, answers (status, body, headers)."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url, self.session = url, session
        self.headers: dict[str, str] = {}

    async def login(self, user: str = DEFAULT_USER, password: str = DEFAULT_PASSWORD) -> str:
        status, body, _ = await self.call("POST", "/api/auth/v2/api_login/",
                                          {"username": user, "password": password})
        assert status == 200, body
        self.headers = {"Authorization": f"Bearer {body['access_token']}"}
        return str(body["access_token"])

    async def call(self, method: str, path: str, body: Any = None, *,
                   params: Any = None, headers: dict[str, str] | None = None,
                   data: bytes | None = None) -> tuple[int, Any, Any]:
        kw: dict[str, Any] = {"data": data} if data is not None else {"json": body}
        async with self.session.request(method, self.url + path, params=params,
                                        headers=self.headers if headers is None else headers,
                                        **kw) as resp:
            raw = await resp.read()
            if resp.content_type == "application/json":
                return resp.status, json.loads(raw), resp.headers
            return resp.status, raw, resp.headers

    async def create(self, payload: dict[str, Any], *, dry: bool = False) -> tuple[int, Any]:
        status, body, _ = await self.call("POST", CREATE, payload,
                                          params={"dry_run": str(dry).lower()})
        return status, body


async def _api(url: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        api = Api(url, session)
        await api.login()
        yield api


@pytest.fixture
async def api(sandbox: str) -> AsyncIterator[Api]:
    async for a in _api(sandbox):
        yield a


async def _serving(config: SandboxConfig) -> AsyncIterator[tuple[Api, Any]]:
    async with run_sandbox(config) as sb:
        async for a in _api(sb.url):
            yield a, sb


# -- auth ---------------------------------------------------------------------------------


async def test_login_forms_and_header_variants(sandbox: str) -> None:
    async with aiohttp.ClientSession() as session:
        api = Api(sandbox, session)
        token = await api.login()
        assert token != await api.login()  # unique per login
        status, body, _ = await api.call("POST", "/api/auth/v2/api_login",
                                         {"username": DEFAULT_USER, "password": "nope"})
        assert (status, body) == (401, {"message": "Invalid credentials"})
        status, body, _ = await api.call("POST", "/api/auth/api_login/",
                                         {"username": DEFAULT_USER, "password": DEFAULT_PASSWORD})
        assert status == 200 and body["Authorization"].startswith("Bearer ")
        legacy = body["Authorization"]
        for headers in ({"Authorization": legacy}, {"Authorization": f"bearer {token}"},
                        {"Emgauthorization": token}, {"Emgauthorization": f"BEARER {token}"},
                        {"Authorization": "", "Emgauthorization": legacy}):
            status, _, _ = await api.call("GET", "/api/user/org_users/", headers=headers)
            assert status == 200, headers
        for headers in ({}, {"Authorization": token}, {"Authorization": "Bearer nope"}):
            status, body, _ = await api.call("GET", "/api/user/org_users/", headers=headers)
            assert status == 401 and "message" in body, headers


async def test_login_token_from_fixture_seed(api: Api) -> None:
    import base64

    token = api.headers["Authorization"].split()[1]
    assert base64.b64decode(token).decode().startswith("stub,00000000-0000-4000-8000-")


async def test_default_token_is_tenant_and_uuid() -> None:
    import base64
    import uuid

    async for api, _ in _serving(SandboxConfig()):
        tenant, raw = base64.b64decode(api.headers["Authorization"].split()[1]).decode().split(",")
        assert tenant == "sandbox" and uuid.UUID(raw).version == 4


async def test_token_expiry_answers_403() -> None:
    async for api, _ in _serving(SandboxConfig(token_ttl=0.2)):
        assert (await api.call("GET", "/api/user/org_users/"))[0] == 200
        await asyncio.sleep(0.3)
        status, body, _ = await api.call("GET", "/api/user/org_users/")
        assert status == 403 and "message" in body
        await api.login()
        assert (await api.call("GET", "/api/user/org_users/"))[0] == 200


# -- create and validation ------------------------------------------------------------------


async def test_create_dry_run_and_real(api: Api) -> None:
    first, second = payloads()[:2]
    assert await api.create(first, dry=True) == (200, {"Status": "Success"})
    status, body = await api.create(first)
    assert status == 201 and body["name"] == "EMG100000001" and body["Status"] == "Success"
    assert isinstance(body["id"], int)
    status, body = await api.create(second)
    assert body["name"] == "EMG100000002"
    status, body, _ = await api.call("POST", CREATE + "/", first)  # trailing slash, no dry_run
    assert status == 201 and body["name"] == "EMG100000003"


def _bad_payloads() -> list[tuple[str, Any]]:
    base = payloads()[0]

    def edit(path: str, value: Any) -> dict[str, Any]:
        body = copy.deepcopy(base)
        *parents, last = path.split(".")
        node = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is KeyError:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return body

    return [
        ("not an object", [1, 2]),
        ("no test_data", edit("test_data", KeyError)),
        ("no proband", edit("test_data.patients.proband", KeyError)),
        ("bad gender", edit("test_data.patients.proband.gender", "M")),
        ("bad phenotype", edit("test_data.patients.proband.phenotypes",
                               [{"id": "HP:0001250"}])),
        ("unknown storage", edit("test_data.samples.0.sampleFiles.0.storage_id", 12345)),
        ("storage as words", edit("test_data.samples.0.sampleFiles.0.storage_id", "nine")),
        ("storage as a float", edit("test_data.samples.0.sampleFiles.0.storage_id", 900.0)),
        ("bad sample type", edit("test_data.sample_type", "bam")),
        ("samples not a list", edit("test_data.samples", {})),
        ("label not an id", edit("test_data.labels", ["3a"])),
        ("bool as text", edit("test_data.boostGenes", "false")),
        ("should_upload int", edit("should_upload", 0)),
        ("dangling mother", edit("test_data.patients.proband.mother", "mum")),
        ("duplicate id", edit("test_data.patients.other.0.id", "mother")),
        ("mother slot relation", edit("test_data.patients.mother.relationship", "Father")),
        ("bad case type", edit("test_data.type", "Genome")),
        ("bad date", edit("test_data.due_date", "20/12/2002")),
    ]


@pytest.mark.parametrize(("why", "body"), _bad_payloads(), ids=[w for w, _ in _bad_payloads()])
async def test_create_rejects_bad_input(api: Api, why: str, body: Any) -> None:
    for dry in (True, False):
        status, answer = await api.create(body, dry=dry)
        assert status == 400 and isinstance(answer["message"], str), why
    cases = (await api.call("GET", "/_sandbox/cases"))[1]
    assert cases["total"] == 0


async def test_create_rejects_malformed_json_and_bad_dry_run(api: Api) -> None:
    status, body, _ = await api.call("POST", CREATE, data=b'{"test_data": ',
                                     params={"dry_run": "true"})
    assert status == 400 and "message" in body
    status, body, _ = await api.call("POST", CREATE, payloads()[0], params={"dry_run": "maybe"})
    assert status == 400
    ok, _ = await api.create(payloads()[0])
    assert ok == 201  # the failures used no case number
    assert (await api.call("GET", "/_sandbox/cases"))[1]["hits"][0]["name"] == "EMG100000001"


async def test_fixture_error_overrides(api: Api) -> None:
    body = payloads()[0]
    proband = body["test_data"]["patients"]["proband"]
    proband["fastq_sample"] = "SRVERR-TXT"
    status, text, _ = await api.call("POST", CREATE, body, params={"dry_run": "true"})
    assert (status, text) == (400, b"Gene list 999 does not exist")
    proband["fastq_sample"], proband["pending_sample_name"] = "", "CRTERR-MSG"
    assert await api.create(body, dry=True) == (200, {"Status": "Success"})
    status, answer = await api.create(body)
    assert status == 409 and "already assigned" in answer["message"]


async def test_new_case_status_pending_or_uploading(api: Api) -> None:
    body = payloads()[0]
    body["should_upload"] = True
    name = (await api.create(body))[1]["name"]
    assert (await api.call("GET", f"/api/test/{name}/"))[1]["status"] == "pending"
    body["should_upload"] = False
    name = (await api.create(body))[1]["name"]
    assert (await api.call("GET", f"/api/test/{name}"))[1]["status"] == "uploading"


# -- reads ----------------------------------------------------------------------------------


async def test_case_object_info_and_404(api: Api) -> None:
    body = payloads()[0]
    name = (await api.create(body))[1]["name"]
    status, case, _ = await api.call("GET", f"/api/test/{name}/")
    assert status == 200
    for key in ("name", "id", "type", "sample_type", "status", "status_change_date", "created",
                "creator", "patients", "samples", "selected_preset_set", "gene_list_id",
                "labels", "participants"):
        assert key in case, key
    assert "reports" not in case and "preset_groups" not in case  # not on the real object
    assert case["created"].endswith(" GMT") and case["creator"]["name"] == "Sandbox User"
    sent = body["test_data"]["patients"]["proband"]
    proband = case["patients"]["proband"]
    for key in ("id", "fastq_sample", "gender", "relationship", "healthy", "date_of_birth"):
        assert proband[key] == sent[key], key
    status, info, _ = await api.call("GET", f"/api/test/{name}/info")
    assert status == 200 and set(info) == {"name", "status", "created", "creator", "last_update"}
    for path in ("/api/test/EMG999999999/", "/api/test/EMG999999999/info",
                 "/api/candidates/EMG999999999"):
        status, body404, _ = await api.call("GET", path)
        assert (status, body404) == (404, {"message": "Test EMG999999999 not found"}), path


async def test_sample_lookup_finds_created_cases(api: Api) -> None:
    body = payloads()[0]
    name = (await api.create(body))[1]["name"]
    proband = body["test_data"]["patients"]["proband"]["fastq_sample"]
    params = {"query": proband, "sampleType": "fastq", "exact_match": "true"}
    status, found, _ = await api.call("GET", "/api/sample/", params=params)
    assert status == 200 and found["total"] == 1
    hit = found["hits"][0]
    assert hit["note"] == name and hit["name"] == proband and hit["created"].endswith("GMT")
    params = {"query": proband[:-1], "exact_match": "false"}
    assert (await api.call("GET", "/api/sample", params=params))[1]["total"] >= 1
    params = {"query": "EX001", "sampleType": "fastq", "exact_match": "true"}
    assert (await api.call("GET", "/api/sample/", params=params))[1] == {
        "total": 1,
        "hits": [{"id": 880001, "name": "EX001", "sample_type": "fastq", "note": "EMG200000001"}],
    }


async def test_storage_and_fs_list_paging(api: Api) -> None:
    assert (await api.call("GET", "/api/storage/461"))[1]["scheme"] == "s3"
    assert (await api.call("GET", "/api/storage/7/")) [:2] == (
        404, {"message": "Storage provider 7 not found"})
    status, projects, _ = await api.call("GET", "/api/storage/900/fs/list",
                                         params={"path": "/projects/"})
    big = next(p["name"] for p in projects["resources"] if p["alias"] == "Big-Cohort")
    path = f"projects/{big}/biosamples"
    seen = []
    for start in (0, 100):
        status, page, _ = await api.call("GET", "/api/storage/900/fs/list",
                                         params={"from": start, "size": 500, "path": path})
        assert status == 200
        seen += page["resources"]
        assert page["has_more"] is (start == 0)
    assert len(seen) == 130 and len({s["name"] for s in seen}) == 130
    status, body, _ = await api.call("GET", "/api/storage/900/fs/list",
                                     params={"path": "/nowhere/"})
    assert (status, body) == (404, {"message": "Path /nowhere/ not found"})
    status, _, _ = await api.call("GET", "/api/storage/900/fs/list", params={"from": "x"})
    assert status == 400


async def test_default_storages_without_fixture() -> None:
    async for api, _ in _serving(SandboxConfig()):
        assert (await api.call("GET", "/api/storage/1"))[1]["scheme"] == "s3"
        assert (await api.call("GET", "/api/storage/2"))[1]["scheme"] == "basespace"
        page = (await api.call("GET", "/api/storage/2/fs/list", params={"path": "projects"}))[1]
        assert page["resources"] == [{"name": "1001", "alias": "Demo-Project"}]


async def test_list_cases_paging_and_filters(api: Api) -> None:
    bodies = payloads("v003_random_8fam")
    names = [(await api.create(b))[1]["name"] for b in bodies]
    assert len(names) == 8
    await api.call("POST", "/_sandbox/advance", {"case": names[0], "status": "delivered"})
    status, page, _ = await api.call("GET", "/api/test", params={"from": 0, "size": 5})
    assert status == 200 and page["total"] == 8 and len(page["hits"]) == 5
    page2 = (await api.call("GET", "/api/test/", params={"from": 5, "size": 5}))[1]
    assert [h["name"] for h in page["hits"] + page2["hits"]] == names
    await api.call("POST", "/_sandbox/advance", {"case": names[1], "status": "trash"})
    params = [("status", "delivered"), ("status", "trash")]
    only = (await api.call("GET", "/api/test", params=params))[1]
    assert [h["name"] for h in only["hits"]] == names[:2]
    later = (await api.call("GET", "/api/test",
                            params={"from_status_change_date": "2999-01-01T00:00:00Z"}))[1]
    assert later == {"hits": [], "total": 0}
    # the case in the trash is listed only when asked for by status
    assert (await api.call("GET", "/api/test", params={"size": 1000}))[1]["total"] == 7
    assert (await api.call("GET", "/api/test",
                           params={"from_status_change_date": "soon"}))[0] == 400


async def test_users_participants_and_preset_groups(api: Api) -> None:
    users = (await api.call("GET", "/api/user/org_users"))[1]
    assert users["total"] == 1 and users["hits"][0]["email"] == DEFAULT_USER
    name = (await api.create(payloads()[0]))[1]["name"]
    uid = users["hits"][0]["id"]
    status, _, _ = await api.call("POST", f"/api/participant/{name}", {"action": "assign",
                                                                       "ids": [uid]})
    assert status == 200
    assert (await api.call("POST", f"/api/participant/{name}/",
                           {"action": "assign", "ids": [424242]}))[0] == 400
    assert (await api.call("POST", "/api/participant/EMG000000009",
                           {"action": "assign", "ids": [uid]}))[0] == 404
    group = {"name": "Epilepsy", "filter": {"search": [
        {"id": 17, "name": "Epilepsy panel", "type": "gene list", "value": 17}]}}
    status, made, _ = await api.call("POST", f"/api/test/{name}/preset_group", group)
    assert status == 201 and made["name"] == "Epilepsy" and isinstance(made["id"], int)
    assert (await api.call("POST", f"/api/test/{name}/preset_group/", {"name": ""}))[0] == 400
    hit = (await api.call("GET", "/_sandbox/cases"))[1]["hits"][0]
    assert len(hit["preset_groups"]) == 1 and hit["participants"][0]["id"] == uid


async def test_fixture_users_and_gene_lists(tmp_path: Path) -> None:
    fixture = tmp_path / "fixture.json"
    fixture.write_text(json.dumps({
        "users": [{"id": 77, "email": "ann@lab.org", "name": "Ann", "password": "pw"},
                  {"id": 78, "email": "bob@lab.org", "name": "Bob"}],
        "gene_lists": [{"id": 5, "name": "Cardio"}],
        "storages": {"461": {"id": 461, "scheme": "s3", "name": "b"},
                     "900": {"id": 900, "scheme": "basespace", "name": "bs"}},
    }))
    async for api, _ in _serving(SandboxConfig(fixture=fixture)):
        await api.login("ann@lab.org", "pw")
        await api.login("bob@lab.org", DEFAULT_PASSWORD)
        users = (await api.call("GET", "/api/user/org_users/"))[1]
        assert {u["email"] for u in users["hits"]} == {DEFAULT_USER, "ann@lab.org", "bob@lab.org"}
        name = (await api.create(payloads()[0]))[1]["name"]
        assert (await api.call("POST", f"/api/participant/{name}",
                               {"action": "assign", "ids": [77, 78]}))[0] == 200

        def group(gid: int) -> dict[str, Any]:
            return {"name": "g", "filter": {"search": [
                {"id": gid, "name": "x", "type": "gene list", "value": gid}]}}

        assert (await api.call("POST", f"/api/test/{name}/preset_group", group(5)))[0] == 201
        assert (await api.call("POST", f"/api/test/{name}/preset_group", group(6)))[0] == 400


async def test_candidates_are_deterministic(api: Api) -> None:
    name = (await api.create(payloads()[0]))[1]["name"]
    first = (await api.call("GET", f"/api/candidates/{name}"))[1]
    assert first == (await api.call("GET", f"/api/candidates/{name}/"))[1]
    assert first["total"] == len(first["hits"]) >= 2
    tags = {"most_likely", "to_be_reported", "research_candidate", "in_report", "carrier",
            "incidental"}
    for hit in first["hits"]:
        assert hit["tag"] in tags and hit["variant"].startswith("chr") and ">" in hit["variant"]
    export = (await api.call("GET", f"/api/test/{name}/export/"))[1]
    assert [v["gene_name"] for v in export["variants"]] == [h["gene"] for h in first["hits"]]


# -- lifecycle ----------------------------------------------------------------------------


async def test_status_rules_and_reports(api: Api) -> None:
    name = (await api.create(payloads()[0]))[1]["name"]
    put = f"/api/test/{name}"
    status, body, _ = await api.call("PUT", put, {"status": "finalized"})
    assert status == 409 and body == {"message": f"Case {name} is not delivered yet"}
    for refused in ("in_progress", "pending", "reanalysis", "bogus", "custom_status_11"):
        assert (await api.call("PUT", put, {"status": refused}))[0] == 400, refused
    assert (await api.call("PUT", put, {"status": 3}))[0] == 400
    assert (await api.call("PUT", "/api/test/EMG000000001", {"status": "trash"}))[0] == 404
    await api.call("POST", "/_sandbox/advance", {"case": name, "status": "delivered"})
    assert (await api.call("GET", f"/api/test/v2/{name}/reports/pdf/1"))[0] == 409
    status, body, _ = await api.call("PUT", put + "/", {"status": "custom_status_3"})
    assert (status, body["status"]) == (200, "custom_status_3")
    assert (await api.call("PUT", put, {"status": "finalized"}))[0] == 200
    case = (await api.call("GET", put))[1]
    listing = (await api.call("GET", f"/api/test/v2/{name}/reports"))[1]
    assert case["status"] == "finalized" and {r["type"] for r in listing["hits"]} == {"pdf",
                                                                                        "json"}
    for rep in listing["hits"]:
        status, content, headers = await api.call(
            "GET", f"/api/test/v2/{name}/reports/{rep['type']}/{rep['id']}")
        assert status == 200
        if rep["type"] == "pdf":
            assert headers["Content-Type"] == "application/pdf" and content.startswith(b"%PDF-")
        else:
            assert content["case_name"] == name
    assert (await api.call("GET", f"/api/test/v2/{name}/reports/pdf/999"))[0] == 404


async def test_advance_after_zero_delivers_at_once() -> None:
    async for api, _ in _serving(SandboxConfig(fixture=FIXTURE, advance_after=0)):
        name = (await api.create(payloads()[0]))[1]["name"]
        assert (await api.call("GET", f"/api/test/{name}/"))[1]["status"] == "delivered"
        assert (await api.call("PUT", f"/api/test/{name}", {"status": "finalized"}))[0] == 200


async def test_advance_on_a_clock_and_pending_stays() -> None:
    async for api, _ in _serving(SandboxConfig(fixture=FIXTURE, advance_after=0.15)):
        name = (await api.create(payloads()[0]))[1]["name"]
        body = payloads()[1]
        body["should_upload"] = True
        waiting = (await api.create(body))[1]["name"]
        assert (await api.call("GET", f"/api/test/{name}/"))[1]["status"] == "uploading"
        for _ in range(100):
            await asyncio.sleep(0.05)
            if (await api.call("GET", f"/api/test/{name}/"))[1]["status"] == "delivered":
                break
        assert (await api.call("GET", f"/api/test/{name}/"))[1]["status"] == "delivered"
        assert (await api.call("GET", f"/api/test/{waiting}/"))[1]["status"] == "pending"


async def test_webhook_receives_every_change() -> None:
    events: list[dict[str, Any]] = []
    failed_once = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        if not failed_once.is_set():  # the first attempt fails: the sandbox must retry
            failed_once.set()
            return web.Response(status=503)
        events.append(await request.json())
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        async for api, _ in _serving(SandboxConfig(fixture=FIXTURE, advance_after=0, webhook=hook)):
            name = (await api.create(payloads()[0]))[1]["name"]
            await api.call("PUT", f"/api/test/{name}", {"status": "finalized"})
            for _ in range(100):
                if len(events) >= 3:
                    break
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert [(e["previous_status"], e["status"]) for e in events] == [
        ("uploading", "in_progress"), ("in_progress", "delivered"), ("delivered", "finalized")]
    assert events[0]["event"] == "case_status_changed" and events[0]["case_name"] == name
    assert events[0]["organization"] == "sandbox"
    assert events[0]["status_change_date"].endswith("GMT")


# -- records, stats, restart, threads, command line -------------------------------------


async def test_record_file_and_stats(tmp_path: Path, fixture_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    async for api, _ in _serving(SandboxConfig(fixture=fixture_path, record=record)):
        token = api.headers["Authorization"].split()[1]
        await api.create(payloads()[0], dry=True)
        await api.call("GET", "/api/storage/900/fs/list", params=[("path", "projects"),
                                                                   ("from", "0")])
        await api.call("GET", "/api/nothing/here")
        stats = (await api.call("GET", "/_sandbox/stats"))[1]["requests"]
    assert stats["POST /api/cases/v2/cases"] == {"200": 1}
    assert stats["POST /api/auth/v2/api_login"] == {"200": 1}
    assert stats["GET /api/storage/{id}/fs/list"] == {"200": 1}
    text = record.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["method"] for line in lines[:3]] == ["POST", "POST", "GET"]
    assert set(lines[0]) == {"method", "path", "query", "body"}
    assert lines[0]["body"]["username"] == DEFAULT_USER
    assert lines[1]["body"] == payloads()[0] and lines[1]["query"] == [["dry_run", "true"]]
    assert lines[2]["query"] == [["path", "projects"], ["from", "0"]]
    assert lines[2]["body"] is None
    assert token not in text and "authorization" not in text.lower()
    assert lines[0]["body"]["password"] == "<redacted>"


async def test_restart_keeps_state(fixture_path: Path) -> None:
    config = SandboxConfig(fixture=fixture_path)
    async with run_sandbox(config) as first:
        async for api in _api(first.url):
            name = (await api.create(payloads()[0]))[1]["name"]
            headers = api.headers
    async with run_sandbox(config, state=first.state) as second, \
            aiohttp.ClientSession() as session:
        api = Api(second.url, session)
        api.headers = headers  # the token survives the restart too
        assert (await api.call("GET", f"/api/test/{name}/"))[0] == 200
        assert (await api.create(payloads()[1]))[1]["name"] == "EMG100000002"


def test_sandbox_thread_serves_sync_code() -> None:
    async def probe(url: str) -> int:
        async with aiohttp.ClientSession() as session, session.get(url + "/_sandbox/cases") as r:
            return r.status

    with SandboxThread(SandboxConfig()) as sb:
        assert sb.url.startswith("http://127.0.0.1:")
        assert asyncio.run(probe(sb.url)) == 200
        assert sb.state.cases == {}
    with pytest.raises(RuntimeError):
        _ = SandboxThread().url


def test_command_refuses_remote_host() -> None:
    result = CliRunner().invoke(sandbox_command, ["--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2 and "--allow-remote" in result.output


async def test_a_deeply_nested_create_body_is_malformed_not_a_crash(api: Api) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    status, body, _ = await api.call("POST", CREATE, data=deep,
                                     params={"dry_run": "true"},
                                     headers={**api.headers, "Content-Type": "application/json"})
    assert (status, body) == (400, {"message": "Malformed JSON body"})
