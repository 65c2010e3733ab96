"""``emg-batch doctor``: a read-only check of a tenant, before the first real run.

It logs in, reads the tenant's OpenAPI document where it serves one, reads one recent case and
checks the fields emg-batch relies on (its own lists below: ``OPERATIONS`` and ``CASE_FIELDS``),
tries the ways report ids can be found, and the sample, user and storage look-ups. Only GET
requests and the login are sent: nothing is written to the tenant. Each check says what it means
for ``run`` and ``pull``; the tenant is compatible when no check failed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from batch.api import AdaptiveLimiter, Client, RetryPolicy
from batch.errors import ApiError, AuthError
from batch.jobs.connect import Connection, Target, open_client
from batch.jobs.tenants import Setting
from batch.text import quoted

Verdict = Literal["ok", "warning", "failed"]
#: The operations emg-batch sends, as an OpenAPI document names them.
OPERATIONS = (
    ("post", "/api/auth/v2/api_login"), ("post", "/api/cases/v2/cases"),
    ("get", "/api/test/{}"), ("get", "/api/test/{}/info"), ("put", "/api/test/{}"),
    ("get", "/api/test"), ("get", "/api/candidates/{}"), ("post", "/api/participant/{}"),
    ("post", "/api/test/{}/preset_group"), ("get", "/api/user/org_users"),
    ("get", "/api/sample"), ("get", "/api/storage/{}"), ("get", "/api/storage/{}/fs/list"),
    ("get", "/api/test/v2/{}/reports/{}/{}"),
)
#: Case-object fields emg-batch reads, and the JSON type each must have.
CASE_FIELDS: Mapping[str, type | tuple[type, ...]] = {
    "name": str, "status": str, "created": str, "type": str, "gene_list_id": int,
    "patients": dict, "patients.proband": dict,
}
DOCTOR_TIMEOUT = 5.0
#: The case ``doctor --sandbox`` creates first (only in the built-in sandbox, never a tenant).
DEMO_CASE: Mapping[str, Any] = {
    "should_upload": False, "sharing_level": 1,
    "test_data": {"type": "Exome", "sample_type": "fastq", "patients": {"proband": {
        "id": "proband", "relationship": "Test Subject", "gender": "Female",
        "fastq_sample": "DOCTOR-01", "pending_sample_name": "", "healthy": True,
        "phenotypes": []}},
        "samples": [{"fastq": "DOCTOR-01", "status": "uploaded", "sampleFiles": [
            {"path": "/doctor/DOCTOR-01_R1.fastq.gz", "filename": "DOCTOR-01_R1.fastq.gz",
             "size": 0, "status": "uploaded", "storage_id": 1}]}]},
}


@dataclass(frozen=True, slots=True)
class Check:
    """One check: its name, verdict, what was found, and what it means for run and pull."""

    name: str
    verdict: Verdict
    found: str
    meaning: str


@dataclass(slots=True)
class DoctorReport:
    """Every check of one tenant, and the seconds they took."""

    host: str
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    #: The config file's tenant checked (None: none), and where each setting came from.
    tenant: str | None = None
    settings: list[Setting] = field(default_factory=list)

    @property
    def compatible(self) -> bool:
        """No check failed (warnings allowed)."""
        return all(c.verdict != "failed" for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 compatible, 1 not."""
        return 0 if self.compatible else 1

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {"host": self.host, "tenant": self.tenant, "compatible": self.compatible,
                "seconds": self.seconds, "settings": [asdict(s) for s in self.settings],
                "checks": [asdict(c) for c in self.checks]}


async def doctor_job(target: Target, connection: Connection | None = None) -> DoctorReport:
    """Check the tenant of *target*, read-only, with short timeouts and few retries."""
    connection = connection or Connection(timeout=DOCTOR_TIMEOUT,
                                          retry=RetryPolicy(attempts=2, wait_max=1.0))
    started = time.monotonic()
    async with open_client(target, connection) as client:
        report = DoctorReport(client.host, tenant=target.tenant.name if target.tenant else None,
                              settings=list(target.settings))
        if target.sandbox:  # a new sandbox holds no case: make one to read
            await client.create_case(DEMO_CASE)
        await Doctor(client, report).run()
    report.seconds = round(time.monotonic() - started, 2)
    return report


class Doctor:
    """The checks, in order; a check that cannot run says why and the next one goes on."""

    def __init__(self, client: Client, report: DoctorReport) -> None:
        self.client = client
        self.report = report
        self.case: dict[str, Any] | None = None

    def add(self, name: str, verdict: Verdict, found: str, meaning: str) -> None:
        """Record one check."""
        self.report.checks.append(Check(name, verdict, found, meaning))

    async def run(self) -> None:
        """Every check; a refused login stops them (nothing else can be checked)."""
        try:
            await self.login()
        except AuthError as exc:
            self.add("login", "failed", exc.message, "run and pull cannot start: check "
                     "EMG_USERNAME/EMG_PASSWORD (or EMG_TOKEN) and the host")
            return
        checks = (("openapi", self.openapi), ("recent case", self.recent_case),
                  ("case listing", self.listing), ("report discovery", self.reports),
                  ("sample look-up", self.samples), ("org users", self.users),
                  ("storage", self.storage))
        for name, check in checks:
            await self.guarded(name, check)
        self.rate_limit()

    async def guarded(self, name: str, check: Callable[[], Awaitable[None]]) -> None:
        """Run one check; an API error is that check's failure, not the doctor's."""
        try:
            await check()
        except AuthError:
            raise
        except ApiError as exc:
            status = f" (HTTP {exc.status})" if exc.status else ""
            self.add(name, "failed", f"{exc.message}{status}", _MEANINGS.get(name, ""))

    async def login(self) -> None:
        """The login works (``POST /api/auth/v2/api_login/``)."""
        await self.client.login()
        self.add("login", "ok", "POST /api/auth/v2/api_login/ answered a token",
                 "run and pull can log in, and log in again when the token expires")

    async def openapi(self) -> None:
        """Every operation emg-batch uses is in the tenant's OpenAPI document."""
        document = await self.client.openapi()
        if document is None:
            self.add("openapi", "warning", "no OpenAPI document at /api/apidoc/openapi.json",
                     "the operations could not be checked one by one; the checks below "
                     "try the ones that can be tried without writing")
            return
        served = set(_operations(document))
        missing = [f"{m.upper()} {p}" for m, p in OPERATIONS if (m, p) not in served]
        self.add("openapi", "failed" if missing else "ok",
                 f"missing: {', '.join(missing)}" if missing
                 else f"all {len(OPERATIONS)} operations emg-batch uses are there",
                 "a missing operation fails the steps that need it" if missing
                 else "run and pull use only operations this tenant documents")

    async def recent_case(self) -> None:
        """One recent case: the fields emg-batch reads are there, with the right types."""
        since = (datetime.now(UTC) - timedelta(days=365)).replace(microsecond=0).isoformat()
        async for hit in self.client.list_cases(since=since, page_size=1):
            if hit.get("name"):
                self.case = await self.client.get_case(str(hit["name"]))
                break
        if self.case is None:
            self.add("recent case", "warning", "the tenant lists no case changed in a year",
                     "the case fields could not be checked; run a small import first")
            return
        wrong = _field_problems(self.case)
        self.add("recent case", "failed" if wrong else "ok",
                 f"{self.case.get('name')}: " + ("; ".join(wrong) if wrong else
                                                 "every field emg-batch reads is there"),
                 "lost answers cannot be reconciled and existing cases cannot be found"
                 if wrong else "reconciliation and the look-up of existing cases work")

    async def listing(self) -> None:
        """The case listing pages with ``from``/``size`` and its hits carry what ``listen``
        follows (status, status-change date): two pages of one case each are read."""
        since = (datetime.now(UTC) - timedelta(days=365)).replace(microsecond=0).isoformat()
        hits: list[dict[str, Any]] = []
        pages = self.client.list_pages(since=since, page_size=1, max_pages=2)
        async with aclosing(pages):  # a repeated second page is a ListingError: failed
            async for page in pages:
                hits += page.hits
                if len(hits) >= 2:  # two pages are enough: stop before the bound's error
                    break
        if not hits:
            self.add("case listing", "warning", "the tenant lists no case changed in a year",
                     "its paging and fields could not be checked")
            return
        missing = [k for k in ("status", "status_change_date") if any(k not in h for h in hits)]
        pages_read = "two pages, different cases" if len(hits) > 1 else "one page"
        self.add("case listing", "warning" if missing else "ok",
                 f"GET /api/test: {pages_read}" + (f"; hits without {', '.join(missing)}"
                                                   if missing else ", status and dates"),
                 "listen --poll moves its cursor by the server's Date instead" if missing
                 else "listen --poll and its catch-up can follow this tenant")

    async def reports(self) -> None:
        """Report ids can be found: on the case object, or by a report listing."""
        if self.case is None:
            return
        name = str(self.case.get("name"))
        if isinstance(self.case.get("reports"), list):
            how = "the case object lists its report ids"
        elif await self.client.report_listing(name) is not None:
            how = f"GET /api/test/v2/{name}/reports lists the reports"
        else:
            self.add("report discovery", "failed", "unsupported: the case object lists no "
                     "report ids and the tenant answers no report listing",
                     "pull finalized and listen cannot name reports on their own: give ids "
                     "with --report-id CASE:TYPE:ID or --report-ids FILE")
            return
        self.add("report discovery", "ok", how, "pull finalized finds the reports itself")

    async def samples(self) -> None:
        """The sample look-up names the case of its sample (``note``)."""
        if self.case is None:
            return
        proband = (self.case.get("patients") or {}).get("proband") or {}
        sample = proband.get("fastq_sample") or proband.get("pending_sample_name")
        if not sample:
            self.add("sample look-up", "warning", "the recent case's proband has no sample",
                     "not checked")
            return
        hits = await self.client.find_samples(str(sample), exact=True)
        notes = {str(h.get("note")) for h in hits}
        ok = str(self.case.get("name")) in notes
        self.add("sample look-up", "ok" if ok else "failed",
                 f"{len(hits)} hit(s) for {sample}" + ("" if ok else ", none names its case"),
                 "existing cases are found before a first create, and lost answers "
                 "reconciled" if ok else "run cannot find existing cases or lost creates: "
                 "use --if-exists create only if you are sure no case exists")

    async def users(self) -> None:
        """Org users carry an e-mail and an id (for ``Assign To``)."""
        users = await self.client.org_users()
        usable = [u for u in users if u.get("email") and isinstance(u.get("id"), int)]
        self.add("org users", "ok" if usable else "failed", f"{len(usable)} of {len(users)} "
                 "users with an e-mail and an id", _MEANINGS["org users"])

    async def storage(self) -> None:
        """A storage the recent case uses answers its details (``scheme``)."""
        ids = sorted(set(_storage_ids(self.case))) if self.case else []
        if not ids:
            self.add("storage", "warning", "the recent case names no storage", "not checked")
            return
        details = await self.client.storage(ids[0])
        ok = isinstance(details.get("scheme"), str)
        self.add("storage", "ok" if ok else "failed",
                 f"storage {ids[0]}: scheme {details.get('scheme')!r}", _MEANINGS["storage"])

    def rate_limit(self) -> None:
        """Whether the answers carried a rate-limit policy (Emedgene documents none)."""
        limiter = self.client.limiter
        rate = limiter.advertised if isinstance(limiter, AdaptiveLimiter) else None
        if rate is None:
            self.add("rate limit", "ok", "no rate-limit policy in the answers",
                     "without --rate, run finds the rate from the server's 429s")
            return
        self.add("rate limit", "ok", f"the answers advertise {rate:g} requests a second",
                 "without --rate, run keeps just under it")


_MEANINGS = {
    "openapi": "the operations could not be checked",
    "recent case": "reconciliation and the look-up of existing cases cannot be checked",
    "case listing": "listen --poll, its catch-up and pull finalized cannot follow this tenant",
    "report discovery": "pull finalized may not find reports on its own",
    "sample look-up": "existing cases and lost creates cannot be found",
    "org users": "Assign To needs users with an e-mail and an id",
    "storage": "validation of files (auto, BaseSpace ids) needs the storage details",
}


def _operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(method, path)`` of every documented operation, parameters as ``{}``, no end slash."""
    for path, item in dict(document.get("paths") or {}).items():
        plain = re.sub(r"\{[^}]*\}", "{}", str(path)).rstrip("/") or "/"
        for method in (item or {}):
            yield str(method).lower(), plain


def _field_problems(case: Mapping[str, Any]) -> list[str]:
    """What is missing or of another type among the case fields emg-batch reads."""
    problems = []
    for path, kind in CASE_FIELDS.items():
        node: Any = case
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None or isinstance(node, bool) or not isinstance(node, kind):
            problems.append(f"{path} is {'missing' if node is None else type(node).__name__}")
    created = case.get("created")
    if isinstance(created, str):
        try:
            parsedate_to_datetime(created)
        except (TypeError, ValueError):
            problems.append(f"created {quoted(created, 40)} is not an RFC 1123 date")
    return problems


def _storage_ids(case: Mapping[str, Any]) -> Iterator[int]:
    """Storage ids of the case's sample files (``samples[].sampleFiles[].storageProviderId``
    on a real case object)."""
    samples = case.get("samples")
    for sample in samples if isinstance(samples, list) else []:
        files = sample.get("sampleFiles") if isinstance(sample, dict) else None
        for entry in files if isinstance(files, list) else []:
            value = entry.get("storageProviderId") if isinstance(entry, dict) else None
            if isinstance(value, int) and not isinstance(value, bool):
                yield value


def render_settings(settings: list[Setting]) -> list[str]:
    """A heading, then each setting, its value and where it came from (none: no lines)."""
    width = max((len(s.name) for s in settings), default=0)
    lines = [f"  {s.name:<{width}}  {s.value} (from {s.origin})" for s in settings]
    return ["settings:", *lines] if lines else []


def render_doctor(report: DoctorReport) -> str:
    """The report as a table of lines: check, result, what it means."""
    width = max(len(c.name) for c in report.checks) if report.checks else 5
    lines = [f"{'check':<{width}}  result   found / what it means for run and pull"]
    for check in report.checks:
        lines.append(f"{check.name:<{width}}  {check.verdict:<7}  {check.found}")
        lines.append(f"{'':<{width}}           -> {check.meaning}")
    lines += render_settings(report.settings)
    refused = any(c.name == "login" and c.verdict == "failed" for c in report.checks)
    verdict = ("the login was refused, so nothing else could be checked" if refused else
               "compatible" if report.compatible else "NOT compatible")
    lines.append(f"{report.host}: {verdict} ({report.seconds:.1f} s, read-only)")
    return "\n".join(lines)
