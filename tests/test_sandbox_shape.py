"""The sandbox's case object has the real object's shape: every key, its type, nested."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest

from batch.sandbox import SandboxConfig, run_sandbox
from tests.shape import mismatches
from tests.test_sandbox import CORPUS, FIXTURE, Api, payloads

REAL = CORPUS.parent.parent / "real-responses" / "get-case-finalized-trio.json"
SCRIPT = CORPUS.parent.parent / "emedgene-script"
#: What the real trio shows only as null or empty, filled when the body gives it.
GIVEN_DUE_DATE = {"$.due_date": {"string"}}
FILLED = {**GIVEN_DUE_DATE, "$.sequence_info": {"object"},
          "$.samples[].storage_provider_id": {"integer"},
          "$.patients.proband.samples[].storage_provider_id": {"integer"}}
#: Null until the case gets there.
NOT_YET = {"$.signer": {"null"}, "$.signing_date": {"null"}, "$.delivered_date": {"null"}}
#: What a trio has and a single lacks.
SINGLE = {"$.patients.mother", "$.patients.father", "$.patients.proband.mother",
          "$.patients.proband.father"}


def script_body(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((SCRIPT / f"create-body-{name}.json").read_bytes())
    return body


async def _api(config: SandboxConfig) -> AsyncIterator[Api]:
    async with run_sandbox(config) as sb, aiohttp.ClientSession() as session:
        api = Api(sb.url, session)
        await api.login()
        yield api


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async for a in _api(SandboxConfig(advance_after=0)):
        yield a


@pytest.fixture
async def cli_api() -> AsyncIterator[Api]:
    """A sandbox with the conformance fixture, for the official CLI's bodies."""
    async for a in _api(SandboxConfig(advance_after=0, fixture=FIXTURE)):
        yield a


async def _case(api: Api, body: dict[str, Any], *, finalize: bool = False) -> dict[str, Any]:
    status, made = await api.create(body)
    assert status == 201, made
    if finalize:
        assert (await api.call("PUT", f"/api/test/{made['name']}", {"status": "finalized"}))[0] \
            == 200
    status, case, _ = await api.call("GET", f"/api/test/{made['name']}/")
    assert status == 200
    return dict(case)


def test_the_checker_passes_the_real_object_and_fails_a_mutated_one() -> None:
    real = json.loads(REAL.read_text(encoding="utf-8"))
    assert mismatches(real) == []
    bad = copy.deepcopy(real)
    bad["disease_penetrance"] = 100
    bad["reports"] = []
    del bad["signer"]
    bad["samples"][0]["sampleFiles"][0]["storageProviderId"] = "10126"
    assert len(mismatches(bad)) == 4


async def test_a_finalized_trio_has_the_real_shape(api: Api) -> None:
    case = await _case(api, script_body("case1"), finalize=True)
    assert len(case) == 48
    assert mismatches(case, relax=GIVEN_DUE_DATE) == []
    assert list(case) == sorted(case)  # keys sorted, as the real server writes them


async def test_an_official_cli_trio_has_the_real_shape(cli_api: Api) -> None:
    body = payloads()[0]  # trio with siblings, a pending father, name-only phenotypes
    case = await _case(cli_api, body, finalize=True)
    # The father waits for his data: he keeps the name he waits for [inferred].
    assert mismatches(case, relax=FILLED) == [
        "$.patients.father: unexpected key 'pending_sample_name'"]
    assert case["patients"]["father"]["samples"][0]["status"] == "pending"


@pytest.mark.parametrize("name", ["case2", "case3"])
async def test_singles_have_the_real_shape_without_parents(api: Api, name: str) -> None:
    body = script_body(name)
    body["should_upload"] = True  # stays pending: not delivered, not signed
    case = await _case(api, body)
    assert mismatches(case, relax={**NOT_YET, **FILLED}, optional=SINGLE) == []
    assert case["status"] == "pending" and case["signer"] is None
    assert case["delivered_date"] is None and case["benderStatus"] == "waiting"


async def test_samples_are_the_servers_records(api: Api) -> None:
    case = await _case(api, script_body("case1"))
    samples = case["samples"]
    assert [s["fastq"] for s in samples] == ["S001", "S002", "S003"]
    for role in ("proband", "mother", "father"):
        patient = case["patients"][role]
        assert patient["samples"] == [s for s in samples if s["fastq"] == patient["fastq_sample"]]
        assert patient["other_family_data_key"] == role and patient["id"] == role
    first = samples[0]
    assert isinstance(first["id"], int) and "storage_id" not in first and "path" not in first
    assert first["directoryPath"] == f"sandbox/upload/{case['name']}/S001"
    files = first["sampleFiles"]
    assert files[0]["filename"].endswith("S001_S1_L001_R1_001.fastq.gz")
    assert files[0]["storageProviderId"] == 1 and files[0]["sampleType"] == "fastq"
    assert files[2]["sampleType"] == "bw"  # the bigwig the script sends with sample_type bw
    assert isinstance(files[0]["metadata"]["result"]["file_size"], int)
    params = {"query": "S001", "exact_match": "true"}
    hit = (await api.call("GET", "/api/sample/", params=params))[1]["hits"][0]
    assert hit["id"] == first["id"] and hit["note"] == case["name"]


async def test_values_come_from_the_body_and_the_cases_life(api: Api) -> None:
    body = script_body("case2")
    case = await _case(api, body, finalize=True)
    assert case["gene_list_id"] == 5 and case["boostGenes"] is True
    assert case["labels"] == [{"id": 13, "name": "Label 13"}, {"id": 14, "name": "Label 14"}]
    assert case["sequence_info"] == {"kit_id": 3} and case["due_date"] is None
    assert case["samples"][0]["bam_location"] == "/analysis/run1/S004/S004.cram"
    assert case["samples"][0]["sampleType"] == "project_vcf"
    assert case["phenotypes"][0]["hpo_id"] == "HP:0001250"
    assert case["patients"]["proband"]["phenotypes"] == [
        {"id": "phenotypes/EMG_PHENOTYPE_0001250", "name": "Seizure"}]
    assert case["signer"] == {"id": 1, "name": "Sandbox User"}
    for key in ("created", "status_change_date", "delivered_date", "signing_date",
                "last_access_date"):
        assert parsedate_to_datetime(case[key]).tzinfo is not None, key
    assert case["signing_date"] == case["status_change_date"]
    assert case["organization"]["alias"] == "sandbox"


async def test_phenotypes_sent_by_name_are_resolved(cli_api: Api) -> None:
    body = payloads()[0]
    mother = body["test_data"]["patients"]["mother"]
    mother["phenotypes"] = [{"name": "ataxia", "related": False}, {"name": "Made-up sign"}]
    case = await _case(cli_api, body)
    shown = case["patients"]["mother"]["phenotypes"]
    assert shown[0] == {"id": "phenotypes/EMG_PHENOTYPE_0001251", "name": "Ataxia"}
    assert shown[1]["name"] == "Made-up sign" and shown[1]["id"].startswith("phenotypes/EMG_")
    ids = [p["_id"] for p in case["phenotypes"]]
    assert len(ids) == len(set(ids)) and "phenotypes/EMG_PHENOTYPE_0001251" in ids


async def test_extras_are_off_by_default_and_on_when_asked() -> None:
    async for api in _api(SandboxConfig(advance_after=0)):
        case = await _case(api, script_body("case2"), finalize=True)
        assert "reports" not in case and "preset_groups" not in case
        kept = (await api.call("GET", "/_sandbox/cases"))[1]["hits"][0]
        assert kept["payload"] == script_body("case2") and kept["preset_groups"] == []
    async for api in _api(SandboxConfig(advance_after=0, case_extras=True)):
        case = await _case(api, script_body("case2"), finalize=True)
        assert {r["type"] for r in case["reports"]} == {"pdf", "json"}
        assert case["preset_groups"] == []
        assert mismatches(case, relax=FILLED, optional=SINGLE, allow_extra=True) == []
