"""The client against a real case object, served unchanged by a loopback fake tenant that serves
nothing invented: report pulls, reconciliation, the pre-create look-up, preset-group recovery."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from batch.api import Client, Credentials, RetryPolicy
from batch.ledger import Ledger, State, default_path
from batch.manifest import read_manifest
from batch.outputs import problem_message
from batch.pull import FinalizedOptions, parse_report_ids, pull_finalized
from batch.run import RunOptions, RunSummary, run_manifest
from tests.corpus import REAL_RESPONSES
from tests.ledgers import force_state

REAL = json.loads((REAL_RESPONSES / "get-case-finalized-trio.json").read_text(encoding="utf-8"))
CASE = REAL["name"]
PROBAND = REAL["patients"]["proband"]["fastq_sample"]
PDF = b"%PDF-1.4 real report\n"
HEADER = ("Family Id,Case Type,Files Names,Sample Type,BioSample Name,Relation,Sex,Phenotypes,"
          "Gene List Id,Preset Group,Preset Gene Lists\n")


class Tenant:
    """Serves login, the listing, the real case object, the documented report download and
    the sample look-up; anything else is a 404, as on a tenant without it."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.created = 0

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._log])
        app.router.add_post("/api/auth/v2/api_login/", self.login)
        app.router.add_get("/api/test", self.listing)
        app.router.add_get("/api/test/{case}/", self.case)
        app.router.add_get("/api/test/v2/{case}/reports/{type}/{id}", self.report)
        app.router.add_get("/api/sample/", self.sample)
        app.router.add_post("/api/cases/v2/cases", self.create)
        app.router.add_post("/api/test/{case}/preset_group", self.preset_group)
        return app

    @web.middleware
    async def _log(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.seen.append(f"{request.method} {request.path}")
        return await handler(request)  # type: ignore[no-any-return]

    async def login(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": "opaque", "token_type": "bearer"})

    async def listing(self, request: web.Request) -> web.Response:
        return web.json_response({"hits": [{"name": CASE, "status": "finalized"}], "total": 1})

    async def case(self, request: web.Request) -> web.Response:
        if request.match_info["case"] != CASE:
            return web.json_response({"message": "Test not found"}, status=404)
        return web.json_response(REAL)

    async def report(self, request: web.Request) -> web.Response:
        info = request.match_info
        if (info["case"], info["type"], info["id"]) != (CASE, "pdf", "42"):
            return web.json_response({"message": "Report not found"}, status=404)
        return web.Response(body=PDF, content_type="application/pdf")

    async def sample(self, request: web.Request) -> web.Response:
        if request.query.get("query") != PROBAND:
            return web.json_response({"total": 0, "hits": []})
        return web.json_response({"total": 1, "hits": [{"id": 929052, "name": PROBAND,
                                                        "note": CASE}]})

    async def create(self, request: web.Request) -> web.Response:
        self.created += 1
        return web.json_response({"Status": "Success", "name": "EMG900000002"}, status=201)

    async def preset_group(self, request: web.Request) -> web.Response:
        return web.json_response({"id": 1}, status=201)


@pytest.fixture
async def tenant() -> AsyncIterator[tuple[str, Tenant]]:
    fake = Tenant()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", fake
    finally:
        await runner.cleanup()


def client(url: str) -> Client:
    return Client(url, credentials=Credentials(username="u@lab.org", password="pw"),
                  retry=RetryPolicy.for_testing())


async def test_pull_says_plainly_why_it_cannot_name_a_report(tenant: tuple[str, Tenant],
                                                             tmp_path: Path) -> None:
    url, fake = tenant
    async with client(url) as c:
        result = await pull_finalized(c, FinalizedOptions(out=tmp_path))
    (case,) = result.cases
    assert case.error is not None and "lists no report ids on the case" in case.error
    assert f"--report-id {CASE}:pdf:" in case.error
    assert result.exit_code == 1 and case.status == "finalized"
    assert fake.seen.count(f"GET /api/test/v2/{CASE}/reports") == 1


async def test_pull_downloads_the_reports_the_user_names(tenant: tuple[str, Tenant],
                                                         tmp_path: Path) -> None:
    url, fake = tenant
    ids = parse_report_ids([f"{CASE}:pdf:42"])
    async with client(url) as c:
        result = await pull_finalized(c, FinalizedOptions(out=tmp_path, report_ids=ids))
    (case,) = result.cases
    assert (case.error, case.downloaded, result.exit_code) == (None, 1, 0)
    assert case.files[0].read_bytes() == PDF
    assert not any(s.endswith("/reports") for s in fake.seen)  # no listing asked


async def run(manifest: Path, url: str, **options: Any) -> RunSummary:
    with Ledger.open(default_path(manifest)) as ledger:
        async with client(url) as c:
            return await run_manifest(read_manifest(manifest), client=c, ledger=ledger,
                                      options=RunOptions(**options))


def trio(path: Path, *, case_type: str = "Whole Genome", preset: str = "") -> Path:
    gene_lists = "101:Epilepsy" if preset else ""
    path.write_text(
        HEADER
        + f"T,{case_type},,FASTQ,{PROBAND},proband,M,Seizure,1,{preset},{gene_lists}\n"
        + "T,,,FASTQ,SAMPLE-5,mother,F,unaffected,,,\n"
        + "T,,,FASTQ,SAMPLE-6,father,M,unaffected,,,\n", encoding="utf-8")
    return path


async def test_the_real_case_is_found_before_a_first_create(tenant: tuple[str, Tenant],
                                                            tmp_path: Path) -> None:
    url, fake = tenant
    summary = await run(trio(tmp_path / "m.csv"), url)
    assert (summary.created, summary.failed) == (0, 1)
    assert fake.created == 0
    adopted = await run(trio(tmp_path / "m.csv"), url, if_exists="adopt")
    assert adopted.adopted == 1 and fake.created == 0


async def test_a_reanalysis_of_the_real_sample_is_created(tenant: tuple[str, Tenant],
                                                          tmp_path: Path) -> None:
    url, fake = tenant
    summary = await run(trio(tmp_path / "m.csv", case_type="Exome"), url)
    assert summary.created == 1 and fake.created == 1


async def test_a_lost_create_is_reconciled_from_the_real_object(tenant: tuple[str, Tenant],
                                                                tmp_path: Path) -> None:
    """An attempt that began before the real case's creation time adopts it."""
    url, fake = tenant
    manifest = trio(tmp_path / "m.csv", case_type="Exome")
    await run(manifest, url)
    with Ledger.open(default_path(manifest)) as ledger:
        force_state(ledger, "T", "create", State.UNKNOWN)
        ledger.update_family("T", case_name=None)
    summary = await run(manifest, url, reconcile_skew=10 ** 9)  # "sent" before Feb 2024
    assert (summary.adopted, summary.created) == (1, 0)
    assert fake.created == 1


async def test_a_lost_preset_group_needs_review_with_what_to_do(tenant: tuple[str, Tenant],
                                                                tmp_path: Path) -> None:
    """The real object lists no preset groups: the family needs review, nothing is re-sent."""
    url, fake = tenant
    manifest = trio(tmp_path / "m.csv", preset="Epilepsy plus")
    await run(manifest, url, if_exists="adopt")
    with Ledger.open(default_path(manifest)) as ledger:
        force_state(ledger, "T", "preset_group", State.UNKNOWN)
    again = await run(manifest, url)
    assert again.unknown == 1
    assert fake.seen.count(f"POST /api/test/{CASE}/preset_group") == 1
    with Ledger.open(default_path(manifest)) as ledger:
        record = ledger.family("T")
    message = problem_message(record) if record else None
    assert message and "--resend-unknown preset_group" in message
    resent = await run(manifest, url, resend_unknown=frozenset({"preset_group"}))
    assert resent.unknown == 0
    assert fake.seen.count(f"POST /api/test/{CASE}/preset_group") == 2
