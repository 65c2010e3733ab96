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
    _f("POST /api/auth/v2/api_login/", "Authorization", "inferred",
       "real (the legacy login's answer, a Bearer JWT); a v2 login answering it is a guess",
       "read only when access_token is absent; neither: the login is refused plainly"),
    _f("POST /api/cases/v2/cases", "name", "confirmed", "ref §4.1, cli36, examples",
       "no name on a 2xx: the create is unknown and reconciled, never re-sent"),
    _f("GET /api/test/{case}/", "created", "confirmed", "real",
       "unreadable: a lost create's case is recognised by its content alone (proband, case "
       "type, gene list, relatives); nothing is sent while one matches"),
    _f("GET /api/test/{case}/", "patients", "confirmed", "real",
       "absent: reconciliation cannot match the proband; the family needs review"),
    _f("GET /api/test/{case}/", "patients.proband", "confirmed", "real", "as patients"),
    _f("GET /api/test/{case}/", "patients.proband.fastq_sample", "confirmed", "real, cli36",
       "as patients"),
    _f("GET /api/test/{case}/", "patients.proband.pending_sample_name", "confirmed", "cli36",
       "absent on cases with data: fastq_sample is used"),
    _f("GET /api/test/{case}/", "patients.mother.fastq_sample", "confirmed", "real",
       "absent: the case does not match the family's relatives; a lost create is then "
       "recognised by the server's times"),
    _f("GET /api/test/{case}/", "patients.father.fastq_sample", "confirmed", "real",
       "as patients.mother.fastq_sample"),
    _f("GET /api/test/{case}/", "patients.mother.pending_sample_name", "confirmed", "cli36",
       "absent on cases with data: fastq_sample is used"),
    _f("GET /api/test/{case}/", "patients.father.pending_sample_name", "confirmed", "cli36",
       "absent on cases with data: fastq_sample is used"),
    _f("GET /api/test/{case}/", "patients.other[].fastq_sample", "inferred",
       "cli36 request shape (the real case's other[] is empty)",
       "absent: the case does not match the family's siblings; as patients.mother.fastq_sample"),
    _f("GET /api/test/{case}/", "patients.other[].pending_sample_name", "inferred",
       "cli36 request shape", "as patients.other[].fastq_sample"),
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
    _f("GET /api/test", "hits[].status_change_date", "inferred",
       "ref §7.1 (on the case object: confirmed, real; on a listing hit: a guess)",
       "absent: the listing cursor moves to the server's Date header instead"),
    _f("GET /api/test", "hits[].status", "inferred", "ref §8 (filtered by it: examples)",
       "absent: the listed case is recorded without a status; it is re-read anyway"),
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
    _f("* (429 answers)", "Retry-After header", "inferred", "ref §8 (none documented; the "
       "usual HTTP answer)", "absent: the limiter's own cut and backoff with jitter"),
    _f("* (any answer)", "RateLimit-Policy header (and RateLimit-Limit with w=)", "inferred",
       "none (Emedgene documents no rate-limit headers; IETF httpapi draft)",
       "absent: the rate is found by probing (slow start, then the 429s' token bucket)"),
    _f("* (any answer)", "RateLimit-Remaining / RateLimit-Reset / RateLimit headers",
       "inferred", "none (IETF httpapi draft)",
       "absent: nothing bounds the next requests but the rate found by probing"),
    _f("* (any answer)", "X-RateLimit-Remaining / X-RateLimit-Reset headers", "inferred",
       "none (a common convention; the reset in seconds or as a Unix time)",
       "absent: as RateLimit-Remaining; X-RateLimit-Limit names no window and gives no rate"),
)

def _b(what: str, known: Known, source: str) -> Behaviour:
    return Behaviour(what, known, source)


#: ``what`` starts with the route (``METHOD /path``, the sandbox's pattern) or ``*`` for all.
SANDBOX: tuple[Behaviour, ...] = (
    _b("POST /api/auth/v2/api_login: {username, password} -> {access_token, token_type}",
       "confirmed", "ref §2.1, cli36"),
    _b("POST /api/auth/v2/api_login: the token is opaque, base64 of <tenant>,<uuid4>",
       "confirmed", "ref §2.1 (one published sample)"),
    _b("POST /api/auth/api_login: {username, password} -> {Authorization: Bearer <JWT>}",
       "confirmed", "ref §2.2, script, real (notebook login)"),
    _b("POST /api/auth/api_login: the JWT carries iat, exp and sub; exp - iat = token lifetime",
       "confirmed", "real (notebook token: an Okta JWT, 3600 s)"),
    _b("POST /api/auth/api_login: the JWT is signed HS256 with a sandbox key",
       "inferred", "none (the real one is RS256 from Okta; clients only read claims)"),
    _b("* tokens live 3600 s by default", "confirmed", "real (the one real token seen)"),
    _b("* an expired token answers 403 (401 on request)", "confirmed",
       "ref §2.4 (403, legacy docs); gapp.py handles 401 and 403 alike"),
    _b("* a missing or unknown token answers 401", "inferred", "ref §2.4 (proposal)"),
    _b("* Authorization: Bearer <t> and Emgauthorization: [Bearer ]<t> are accepted",
       "inferred", "ref §2.3 (cli36 sends Emgauthorization)"),
    _b("* every route answers with and without a trailing slash, no redirect", "inferred",
       "clients post to /api/cases/v2/cases and /api/cases/v2/cases/ (examples, gapp.py)"),
    _b("* a GET with a JSON body {} is accepted", "confirmed", "real (notebook GET with json={})"),
    _b("* errors answer {\"message\": text}", "inferred", "ref §8 (cli36 reads message or text)"),
    _b("POST /api/cases/v2/cases: 201 {Status, name, id}; dry_run=true validates only (200)",
       "confirmed", "ref §4.1, cli36, script (201)"),
    _b("POST /api/cases/v2/cases: accepts the bodies of Emedgene's script v2.6 (extra_data \"\","
       " ids as numeric strings, patient/directoryPath/sample_type per sample, sibling ids "
       "repeated, no sharing_level)", "confirmed", "script (bodies sent to real tenants)"),
    _b("POST /api/cases/v2/cases: sample_type \"\" is accepted on a case without files",
       "inferred", "script (sent; whether a tenant accepts it is not known)"),
    _b("POST /api/cases/v2/cases: validation rules and messages (proband, relations, genders, "
       "phenotype ids, storages, types)", "inferred", "ref §4.6, §14 (one message confirmed)"),
    _b("POST /api/cases/v2/cases: should_upload true starts pending, else uploading",
       "confirmed", "ref §4.1, §6"),
    _b("GET /api/test/{case}: every top-level key of the real object, with its types",
       "confirmed", "real"),
    _b("GET /api/test/{case}: samples[] in the server's shape, shared with patients' samples[]",
       "confirmed", "real"),
    _b("GET /api/test/{case}: patient ids as the body sent them", "inferred",
       "real (other58e9 looks made by the creating client)"),
    _b("GET /api/test/{case}: benderStatus words other than finished, checked_presets, "
       "organization values, file sizes and pipeline outputs", "inferred",
       "real (shape only; the values are made up)"),
    _b("GET /api/test/{case}: signer and signing_date null until finalized; due_date and "
       "delivered_date null when none", "inferred", "real (due_date null)"),
    _b("GET /api/test/{case}: reports and preset_groups only with case_extras", "confirmed",
       "real (neither key is on the real object)"),
    _b("PUT /api/test/{case}: {status} sets a user status after delivery", "inferred",
       "examples (route and body), rules inferred"),
    _b("PUT /api/test/{case}: {status: trash} moves a case to the trash at any status, even "
       "before delivery; again changes nothing", "inferred",
       "ref §6 (the trash bin from v38, move to trash before; the API value trash is a guess)"),
    _b("GET /api/test: a case in the trash is listed only when status=trash is asked for",
       "inferred", "ref §6 (the trash bin is a view of its own in the web app)"),
    _b("GET /api/sample: a sample of a case in the trash is not found", "inferred",
       "ref §6 (cases in the trash bin are out of the working lists)"),
    _b("GET /api/test/{case}: a case in the trash is still read, with status trash",
       "inferred", "ref §6 (the trash bin shows its cases, so they are kept)"),
    _b("GET /api/test/{case}/info: {name, status, created, creator, last_update}", "inferred",
       "examples (the words), ref §7.2"),
    _b("GET /api/test: {hits, total} by status and from_status_change_date, paged from/size",
       "inferred", "examples (query), ref §8"),
    _b("GET /api/test without status: every status; from_status_change_date compared with >=",
       "inferred", "examples (the query with status), ref §8"),
    _b("POST /api/test/{case}/preset_group: 201 {id, name}", "confirmed", "examples"),
    _b("GET /api/test/{case}/export: {variants: [{tag.value, gene_name, variant_details}]}",
       "confirmed", "S7 reader (partial)"),
    _b("GET /api/candidates/{case}: {hits, total} of tagged variants", "inferred",
       "examples (route only)"),
    _b("POST /api/participant/{case}: {action: assign, ids}", "confirmed", "examples"),
    _b("GET /api/test/v2/{case}/reports/{type}/{id}: finalized cases only; pdf and json",
       "confirmed", "examples (route, finalized only); types inferred"),
    _b("GET /api/test/v2/{case}/reports: {hits: [{id, type, created}], total}; empty unless "
       "finalized; off with report_listing=False", "inferred", "none (no listing is public)"),
    _b("GET /api/user/org_users: {hits: [{id, email, name}], total}", "confirmed", "examples"),
    _b("GET /api/organization/users: {hits: [{id, email, name, organization_id}], total}",
       "confirmed", "script (reads email, organization_id)"),
    _b("GET /api/sample: {total, hits: [{id, name, note}]}; exact_match; note is the case",
       "confirmed", "cli36, gapp.py"),
    _b("GET /api/phenotype: {total, hits: [{id, name, match}]}; one hit for a known HPO id",
       "confirmed", "script (requires total == 1 for ids)"),
    _b("GET /api/phenotype: names match case-insensitively, name or synonym, exact first",
       "inferred", "script (picks the hit whose name equals the term)"),
    _b("GET /api/storage/{id}: the storage with its scheme", "confirmed", "cli36"),
    _b("GET /api/storage/{id}/fs/list: {resources: [{name, alias}], has_more}, from/size",
       "confirmed", "cli36, script"),
    _b("GET /api/storage/{id}/fs/list: path \"\" (or \"/\") lists the root, whose entry "
       "\"projects\" leads to the projects; every folder on the way to a listed one lists "
       "the folders inside it (a project: \"biosamples\")", "confirmed",
       "cli36 (a Files Names item without a folder is looked up in directory \"\", "
       "BEHAVIOUR.md §1 stage 4), script (recursive_construct_basespace_path_with_ids lists "
       "\"\", then every folder of a path down from it, taking the entry whose alias is the "
       "next step; get_human_readable_file_name lists a bare file's dirname, \"\"); the "
       "entries' names and aliases there: inferred"),
    _b("GET /api/storage/{id}/fs/list: under /projects/{p}/biosamples/{b}/ the project id is "
       "not read (the biosample id is enough)", "confirmed",
       "script (get_dataset_list_of_sample and get_sequenced_files_list list "
       "/projects/0000000000/biosamples/{b}/datasets[/{d}/sequenced files] on real tenants, "
       "and send those paths in create bodies); project ids other than the placeholder: "
       "inferred"),
    _b("GET /api/apidoc/openapi.json: OpenAPI 3 of the emulated routes, spectree operation ids",
       "inferred", "ref §12 (Swagger UI at /api/apidoc/swagger; spectree's default spec URL)"),
    _b("GET /_sandbox/cases: every case with its body (emulator only)", "inferred", "none"),
    _b("GET /_sandbox/stats: answers per route and status (emulator only)", "inferred", "none"),
    _b("POST /_sandbox/faults: change fault settings (emulator only)", "inferred", "none"),
    _b("POST /_sandbox/advance: force a status (emulator only)", "inferred", "none"),
    _b("* status changes are POSTed to a webhook, in order, retried", "inferred", "ref §9"),
    _b("* rate_limit: a token bucket of one second's requests; 429 {\"message\"} with "
       "Retry-After (whole seconds, at least 1)", "inferred", "ref §8 (no limit is documented)"),
    _b("* rate_limit_headers: RateLimit-Policy, RateLimit-* and X-RateLimit-* on every /api "
       "answer (off by default)", "inferred", "none (Emedgene documents no such headers)"),
)
