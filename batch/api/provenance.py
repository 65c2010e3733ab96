"""What emg-batch knows of the Emedgene API, and how it knows it: one table.

Every response field the client reads (``FIELDS``) and every behaviour the sandbox emulates
(``SANDBOX``) is either *confirmed* (seen in the API reference, in the recorded official CLI
v36, in the real responses of a production tenant, or in what Emedgene's own batch script
sends) or *inferred* (public material is silent: a choice, with the client's fallback when a
tenant behaves otherwise). ``tests/test_provenance.py`` fails when the client reads a
response field that is not here; ``emg-batch doctor`` checks the inferred ones on a tenant.

Sources: ``ref`` the API reference (``emedgene-api.md``, section given), ``cli36`` the
recorded official CLI v36, ``real`` the real case object (``get-case-finalized-trio.json``),
``script`` Emedgene's batch script v2.6, ``examples`` Illumina's API code examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Known = Literal["confirmed", "inferred"]


@dataclass(frozen=True, slots=True)
class Field:
    """One response field the client reads."""

    route: str
    path: str
    known: Known
    source: str
    fallback: str


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One behaviour of the emulated API."""

    what: str
    known: Known
    source: str


def _f(route: str, path: str, known: Known, source: str, fallback: str) -> Field:
    return Field(route, path, known, source, fallback)


FIELDS: tuple[Field, ...] = (
    _f("POST /api/auth/v2/api_login/", "access_token", "confirmed", "ref §2.1, cli36",
       "no token: the login is refused with a plain message"),
    _f("POST /api/cases/v2/cases", "name", "confirmed", "ref §4.1, cli36, examples",
       "no name on a 2xx: the create is unknown and reconciled, never re-sent"),
    _f("GET /api/test/{case}/", "created", "confirmed", "real",
       "unreadable: reconciliation cannot decide; the family needs review, nothing is sent"),
    _f("GET /api/test/{case}/", "patients", "confirmed", "real",
       "absent: reconciliation cannot match the proband; the family needs review"),
    _f("GET /api/test/{case}/", "patients.proband", "confirmed", "real", "as patients"),
    _f("GET /api/test/{case}/", "patients.proband.fastq_sample", "confirmed", "real, cli36",
       "as patients"),
    _f("GET /api/test/{case}/", "patients.proband.pending_sample_name", "confirmed", "cli36",
       "absent on cases with data: fastq_sample is used"),
    _f("GET /api/test/{case}/", "status", "confirmed", "real", "absent: shown as unknown"),
    _f("GET /api/test/{case}/", "status_change_date", "confirmed", "real", "left empty"),
    _f("GET /api/test/{case}/", "delivered_date", "confirmed", "real", "left empty"),
    _f("GET /api/test/{case}/", "reports", "inferred", "ref §10 (proposal; not on the real "
       "object)", "absent: report ids come from the report listing or --report-id"),
    _f("GET /api/test/{case}/", "reports[].id", "inferred", "ref §10 (proposal)",
       "an entry without an id is left out"),
    _f("GET /api/test/{case}/", "reports[].type", "inferred", "ref §10 (proposal)",
       "an entry without a type is left out"),
    _f("GET /api/test/{case}/", "checked_presets", "confirmed", "real",
       "absent: a preset group whose answer was lost needs review"),
    _f("GET /api/test/v2/{case}/reports", "hits", "inferred", "none (the download route is "
       "ref §10, a listing is not public)", "404: the tenant lists no reports; report ids "
       "come from the case object or --report-id"),
    _f("GET /api/test/v2/{case}/reports", "hits[].id", "inferred", "none",
       "an entry without an id is left out"),
    _f("GET /api/test/v2/{case}/reports", "hits[].type", "inferred", "none",
       "an entry without a type is left out"),
    _f("GET /api/test/{case}/", "type", "confirmed", "real",
       "absent: no case matches a family by content (nothing is adopted)"),
    _f("GET /api/test/{case}/", "gene_list_id", "confirmed", "real",
       "absent: read as 1 (all genes)"),
    _f("GET /api/test/{case}/", "patients.mother", "confirmed", "real",
       "absent: the case has no mother"),
    _f("GET /api/test/{case}/", "patients.father", "confirmed", "real",
       "absent: the case has no father"),
    _f("GET /api/test/{case}/", "patients.other", "confirmed", "real",
       "absent: the case has no siblings"),
    _f("GET /api/test/{case}/", "name", "confirmed", "real", "doctor: the case is not checked"),
    _f("GET /api/test/{case}/", "samples", "confirmed", "real",
       "doctor: no storage to check"),
    _f("GET /api/test/{case}/", "samples[].sampleFiles", "confirmed", "real", "as samples"),
    _f("GET /api/test/{case}/", "samples[].sampleFiles[].storageProviderId", "confirmed",
       "real", "as samples"),
    _f("GET /api/apidoc/openapi.json", "paths", "inferred", "spectree's default location; "
       "the Swagger UI is at /api/apidoc/swagger (ref §12)",
       "doctor: no document, the operations are not checked one by one"),
    _f("GET /api/test/{case}/", "preset_groups", "inferred", "none (not on the real object)",
       "absent: a preset group whose answer was lost needs review"),
    _f("GET /api/test/{case}/info", "status", "confirmed", "examples", "left empty"),
    _f("GET /api/test/{case}/info", "created", "confirmed", "examples", "left empty"),
    _f("GET /api/test/{case}/info", "creator", "confirmed", "examples", "left empty"),
    _f("GET /api/test/{case}/info", "creator.name", "inferred", "real (creator on the case)",
       "a creator given as text is shown as is"),
    _f("GET /api/test/{case}/info", "creator.id", "inferred", "real (creator on the case)",
       "left empty"),
    _f("GET /api/test/{case}/info", "last_update", "confirmed", "examples", "left empty"),
    _f("GET /api/test", "hits", "inferred", "ref §8 (search envelope)",
       "a bare list is read as the hits"),
    _f("GET /api/test", "hits[].name", "confirmed", "examples", "a hit without a name is skipped"),
    _f("GET /api/test", "total", "inferred", "ref §8", "absent: pages are read until a short one"),
    _f("GET /api/candidates/{case}", "hits", "inferred", "ref §7.2 (shape not public)",
       "a bare list is read as the hits"),
    _f("GET /api/candidates/{case}", "hits[].*", "inferred", "ref §7.2 (shape not public)",
       "every field of a hit becomes a column, whatever it is"),
    _f("GET /api/user/org_users/", "hits", "confirmed", "examples", "no hits: no user matches"),
    _f("GET /api/user/org_users/", "hits[].email", "confirmed", "examples",
       "a user without an e-mail never matches"),
    _f("GET /api/user/org_users/", "hits[].id", "confirmed", "examples",
       "a user without a numeric id never matches"),
    _f("GET /api/sample/", "hits", "confirmed", "ref §3 #16, cli36", "no hits: no sample"),
    _f("GET /api/sample/", "hits[].id", "confirmed", "cli36", "existing: the sample is not usable"),
    _f("GET /api/sample/", "hits[].name", "confirmed", "cli36 fixture",
       "absent: the hit is taken as an exact match (exact_match=true)"),
    _f("GET /api/sample/", "hits[].note", "confirmed", "ref §8, script",
       "absent: the hit names no case and is not adopted"),
    _f("GET /api/storage/{id}", "scheme", "confirmed", "cli36", "absent: not BaseSpace"),
    _f("GET /api/storage/{id}/fs/list", "resources", "confirmed", "cli36", "absent: empty"),
    _f("GET /api/storage/{id}/fs/list", "resources[].*", "confirmed", "cli36",
       "every field is kept as text"),
    _f("GET /api/storage/{id}/fs/list", "resources[].name", "confirmed", "cli36",
       "absent: the entry is skipped"),
    _f("GET /api/storage/{id}/fs/list", "resources[].alias", "confirmed", "cli36",
       "absent: the entry is skipped"),
    _f("GET /api/storage/{id}/fs/list", "has_more", "confirmed", "cli36",
       "absent: the listing ends"),
    _f("* (error answers)", "message", "confirmed", "cli36 (plain text or {\"message\"})",
       "no message: the body, else \"Request failed with status code N\""),
)

SANDBOX: tuple[Behaviour, ...] = ()
