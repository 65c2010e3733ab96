"""Emedgene's own batch script (v2.6) against the sandbox: its requests, replayed as it sends them.

The bodies are in ``tests/data/emedgene-script/`` (see its README). The script logs in with the
legacy route, uses the ``Authorization`` value verbatim, resolves phenotypes through the search
(an id must give exactly one hit; a name the hit with that name) and counts a case only on 201.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, run_sandbox
from tests.test_sandbox import CORPUS

SCRIPT = CORPUS.parent.parent / "emedgene-script"
BODIES = sorted(SCRIPT.glob("create-body-*.json"))


class Script:
    """The script's side of the conversation: one header value, exact bytes."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url, self.session, self.auth = url, session, ""

    async def login(self) -> None:
        body = json.dumps({"username": DEFAULT_USER, "password": DEFAULT_PASSWORD})
        async with self.session.post(self.url + "/api/auth/api_login/", data=body,
                                     headers={"Content-Type": "application/json"}) as resp:
            resp.raise_for_status()
            self.auth = (await resp.json())["Authorization"]

    async def get(self, target: str, **kw: Any) -> tuple[int, Any]:
        async with self.session.get(self.url + target, headers={"Authorization": self.auth},
                                    **kw) as resp:
            return resp.status, await resp.json()

    async def create(self, raw: bytes) -> tuple[int, Any]:
        headers = {"Authorization": self.auth, "Content-Type": "application/json"}
        async with self.session.post(self.url + "/api/cases/v2/cases", data=raw,
                                     headers=headers) as resp:
            return resp.status, await resp.json()

    async def phenotype(self, term: str) -> dict[str, Any]:
        """``extract_phenotypes`` of the script: the hit it would copy into the body."""
        term = term.upper().strip()
        status, found = await self.get(f"/api/phenotype/?query={term}")
        assert status == 200 and isinstance(found["total"], int), found
        assert found["total"] > 0, f"{term}: the script would skip the case"
        if found["total"] == 1:
            hit = found["hits"][0]
        else:
            hit = next(h for h in found["hits"] if h["name"].upper() == term)
        return {k: v for k, v in hit.items() if k != "match"}


@pytest.fixture
async def script() -> AsyncIterator[Script]:
    async with run_sandbox(SandboxConfig()) as sb, aiohttp.ClientSession() as session:
        s = Script(sb.url, session)
        await s.login()
        yield s


async def test_the_legacy_login_answers_a_whole_header_value(script: Script) -> None:
    scheme, token = script.auth.split(" ")
    assert scheme == "Bearer" and token.count(".") == 2


@pytest.mark.parametrize(("term", "name"), [("HP:0001250", "Seizure"),
                                            ("HP:0001263", "Global developmental delay"),
                                            ("Seizure", "Seizure")])
async def test_phenotype_terms_resolve_as_the_script_needs(script: Script, term: str,
                                                           name: str) -> None:
    hit = await script.phenotype(term)
    assert hit["name"] == name and hit["id"].startswith("phenotypes/EMG_PHENOTYPE_")


async def test_phenotype_search_answers(script: Script) -> None:
    assert (await script.get("/api/phenotype/?query=HP:0001250"))[1]["total"] == 1
    status, several = await script.get("/api/phenotype/?query=SEIZURE")
    assert status == 200 and several["total"] >= 2
    assert several["hits"][0] == {"id": "phenotypes/EMG_PHENOTYPE_0001250", "name": "Seizure",
                                  "match": "Seizure"}
    assert {h["name"] for h in several["hits"]} >= {"Seizure", "Febrile seizure"}
    status, by_synonym = await script.get("/api/phenotype/", params={"query": "epilepsy"})
    assert by_synonym["hits"][0] == {"id": "phenotypes/EMG_PHENOTYPE_0001250", "name": "Seizure",
                                     "match": "Epilepsy"}
    for unknown in ("HP:0099999", "no such sign", ""):
        status, none = await script.get("/api/phenotype/", params={"query": unknown})
        assert (status, none) == (200, {"total": 0, "hits": []}), unknown


async def test_the_scripts_bodies_create_every_case(script: Script) -> None:
    names = []
    for path in BODIES:
        raw = path.read_bytes()
        body = json.loads(raw)
        for role, patient in body["test_data"]["patients"].items():
            if role != "other":  # the phenotypes in the body are what the search answers
                for sent in patient["phenotypes"]:
                    assert await script.phenotype(sent["id"].replace(
                        "phenotypes/EMG_PHENOTYPE_", "HP:")) == sent
        status, answer = await script.create(raw)
        assert status == 201, (path.name, answer)
        names.append(answer["name"])
    assert len(set(names)) == len(BODIES) == 4
    status, case = await script.get(f"/api/test/{names[0]}/", json={})  # as the notebook sends
    assert status == 200 and case["name"] == names[0]
    assert [p["fastq_sample"] for p in (case["patients"][r] for r in
                                        ("proband", "mother", "father"))] == ["S001", "S002",
                                                                              "S003"]


async def test_the_legacy_users_listing(script: Script) -> None:
    status, users = await script.get("/api/organization/users/")
    assert status == 200 and users["total"] == len(users["hits"]) >= 1
    me = next(u for u in users["hits"] if u["email"] == DEFAULT_USER)
    assert isinstance(me["organization_id"], int) and isinstance(me["id"], int)
    assert set(me) == {"id", "email", "name", "organization_id"}


async def _listing(script: Script, storage: int, path: str) -> list[dict[str, str]]:
    """``get_remote_object_list`` of the script: every page of one directory, 200 or fail."""
    found: list[dict[str, str]] = []
    start, more = 0, True
    while more:
        status, page = await script.get(f"/api/storage/{storage}/fs/list",
                                        params={"from": start, "size": 100, "path": path})
        assert status == 200, (path, page)
        found += page["resources"]
        more, start = page["has_more"], start + 100
    return found


async def _to_ids(script: Script, human: str) -> str:
    """``convert_basespace_path_to_path_with_ids``: aliases to ids, from the root ("") down."""
    current: list[str] = []
    for step in [s for s in human.split("/") if s.strip()]:
        entries = await _listing(script, 2, "/".join(current))
        current.append(next(e["name"] for e in entries if e["alias"].lower() == step.lower()))
    return "/" + "/".join(current)


async def test_the_root_listing_the_script_and_the_official_cli_send(script: Script) -> None:
    for empty in ("", "/"):
        assert {"name": "projects", "alias": "projects"} in await _listing(script, 2, empty)
    human = "/projects/Demo-Project/biosamples/DEMO-01/datasets/DEMO-01/sequenced files/" \
            "DEMO-01_S1_L001_R1_001.fastq.gz"
    assert await _to_ids(script, human) == \
        "/projects/1001/biosamples/2001/datasets/ds.demo01/sequenced files/30011"


async def test_the_scripts_placeholder_project_lists_a_biosamples_files(script: Script) -> None:
    under = "/projects/0000000000/biosamples/2002/datasets"
    datasets = await _listing(script, 2, under + "/")
    assert datasets == await _listing(script, 2, "/projects/1001/biosamples/2002/datasets")
    files = await _listing(script, 2, f"{under}/{datasets[0]['name']}/sequenced files")
    assert [f["name"] for f in files] == ["30021", "30022"]
    status, _ = await script.get("/api/storage/2/fs/list",
                                 params={"path": "/projects/0000000000/biosamples/9999/datasets"})
    assert status == 404  # an unknown biosample is still not found
