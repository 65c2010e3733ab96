"""The state of a sandbox: the organization it emulates, the tokens it hands out, and the
in-memory database with the case lifecycle.

The organization a sandbox emulates (``tenant.json``): its settings, presets and users' org.

Every case object carries the organization (the real one does, with its presets and settings);
the values are made up, the shape is the real one's.

The two kinds of token a tenant hands out.

The v2 login answers an opaque token (base64 of ``<tenant>,<uuid4>``, as in one published
sample); the legacy login answers a JWT (the one real token seen is an Okta access token whose
``iat`` and ``exp`` are 3600 s apart). The sandbox signs its JWTs with HS256 and a key of its
own: clients read the claims, they cannot check a tenant's signature.

In-memory database of a sandbox: users, tokens, cases, samples, and the case lifecycle.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from batch.sandbox.config import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    DEFAULT_USER_ID,
    DEFAULT_USER_NAME,
    TENANT,
)
from batch.sandbox.fixture import Fixture, default_fixture
from batch.sandbox.phenotypes import Phenotypes

JsonObj = dict[str, Any]

#: The presets the real finalized case shows as checked (``checked_presets``).
CHECKED_PRESETS = ("Autosomal Dominant", "CNV >5Mb", "Compound Hets", "De novo", "Homozygous",
                   "Known Pathogenic", "Most Likely", "X-linked Recessive")


@functools.cache
def _organization() -> JsonObj:
    raw: JsonObj = json.loads(Path(__file__).with_name("tenant.json").read_text(encoding="utf-8"))
    raw.pop("$comment", None)
    return raw


def organization() -> JsonObj:
    """The organization object, shared: read it, never change it (answers serialise it as is,
    and a copy per case read would cost more than the rest of the answer)."""
    return _organization()


def organization_id() -> int:
    """The organization's numeric id (``organization_id`` of the legacy users listing)."""
    return int(_organization()["id"])


def alias() -> str:
    """The organization's alias: the first folder of sample directories and BAM paths."""
    return str(_organization()["alias"])


def b64url(raw: bytes) -> str:
    """Base64url without padding, as JWTs write it."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def opaque(tenant: str, rng_bits: int, seed: str | None, serial: int) -> str:
    """A v2 token: base64 of ``<tenant>,<uuid4>``, or of ``<seed>.<serial>`` from a fixture."""
    if seed is not None:
        raw = f"{seed}.{serial}"  # unique per login, still recognisably the seed
    else:
        raw = f"{tenant},{uuid.UUID(int=rng_bits, version=4)}"
    return base64.b64encode(raw.encode()).decode()


def _numeric(value: float) -> int | float:
    """A NumericDate: whole seconds when the value is whole, else the fraction too."""
    return int(value) if float(value).is_integer() else round(value, 3)


def jwt(*, key: bytes, subject: str, user_id: int, issued: float, ttl: float,
        token_id: str) -> str:
    """A signed JWT with ``iat``, ``exp`` (never after the sandbox's own expiry) and ``sub``."""
    iat = math.floor(issued)
    claims: dict[str, Any] = {
        "ver": 1, "jti": token_id, "iss": "urn:emg-batch:sandbox", "aud": "api://sandbox",
        "iat": iat, "exp": _numeric(iat + ttl), "sub": subject, "uid": user_id,
    }
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "sandbox"},
                            separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = b64url(hmac.new(key, signing_input, hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


#: Statuses the system sets on its own; a user may not set them.
SYSTEM_STATUSES = frozenset({"pending", "uploading", "in_progress", "reanalysis", "issue_reported"})
#: Statuses a user may set with ``PUT /api/test/{case}``.
USER_STATUSES = frozenset(
    {"delivered", "finalized", "trash"} | {f"custom_status_{n}" for n in range(1, 11)}
)
ALL_STATUSES = SYSTEM_STATUSES | USER_STATUSES
#: The automatic steps of the lifecycle clock.
NEXT_STATUS = {"uploading": "in_progress", "in_progress": "delivered"}
FIRST_CASE_ID = 1_000_001
FIRST_SAMPLE_ID = 5_000_001
FIRST_REPORT_ID = 700_001


def rfc1123(ts: float) -> str:
    """Format a POSIX timestamp the way the API does: ``Thu, 01 Feb 2024 16:10:40 GMT``."""
    return format_datetime(datetime.fromtimestamp(ts, UTC), usegmt=True)


@dataclass(slots=True, kw_only=True)
class User:
    """An account of the organisation."""

    id: int
    email: str
    name: str
    password: str

    def summary(self) -> JsonObj:
        """The ``{"id", "email", "name"}`` listing entry."""
        return {"id": self.id, "email": self.email, "name": self.name}

    def ref(self) -> JsonObj:
        """``{"id", "name"}``, as a case names its creator, signer and participants."""
        return {"id": self.id, "name": self.name}


@dataclass(slots=True, kw_only=True)
class Case:
    """A created case: the create body plus what the server adds over its life."""

    name: str
    id: int
    payload: JsonObj
    proband_sample: str
    creator: User
    created: float
    status: str
    status_change: float
    clock: float  # when the current automatic step started
    delivered: float | None = None
    participants: list[JsonObj] = field(default_factory=list)
    preset_groups: list[JsonObj] = field(default_factory=list)
    reports: list[JsonObj] = field(default_factory=list)
    #: Sample name → the server's numeric sample id.
    sample_ids: dict[str, int] = field(default_factory=dict)
    #: When each status was first reached.
    reached: dict[str, float] = field(default_factory=dict)
    signer: User | None = None
    signed: float | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One status change, as sent to the webhook."""

    case: str
    status: str
    previous: str
    when: float

    def event(self) -> JsonObj:
        """The webhook body."""
        return {
            "event": "case_status_changed",
            "case_name": self.case,
            "status": self.status,
            "previous_status": self.previous,
            "status_change_date": rfc1123(self.when),
            "organization": TENANT,
        }


class SandboxState:
    """All data of one sandbox; give it to a new app to emulate a restart that keeps its data."""

    def __init__(self, fixture: Fixture | None = None, *, seed: int = 0) -> None:
        self.fixture = fixture or default_fixture()
        self.rng = random.Random(seed)
        default = User(id=DEFAULT_USER_ID, email=DEFAULT_USER, name=DEFAULT_USER_NAME,
                       password=DEFAULT_PASSWORD)
        self.users: dict[str, User] = {default.email: default}
        for raw in self.fixture.users:
            user = User(id=int(raw["id"]), email=raw["email"],
                        name=str(raw.get("name") or raw["email"]),
                        password=raw.get("password", DEFAULT_PASSWORD))
            self.users[user.email] = user
        self.users_by_id = {u.id: u for u in self.users.values()}
        self.tokens: dict[str, tuple[User, float]] = {}
        self.cases: dict[str, Case] = {}
        self.samples: dict[str, list[JsonObj]] = {}
        for sample in self.fixture.samples:
            self.samples.setdefault(sample["name"], []).append(sample)
        self.advancing: set[str] = set()
        self._next_name = self.fixture.case_name_start
        self._next_case_id = FIRST_CASE_ID
        self._next_sample_id = FIRST_SAMPLE_ID
        self._next_report_id = FIRST_REPORT_ID
        self._next_group_id = 1
        self._logins = 0
        self._jwt_key = self.rng.getrandbits(256).to_bytes(32, "big")
        self.phenotypes = Phenotypes(self.fixture.phenotypes)

    # -- accounts -------------------------------------------------------------------------

    def login(self, username: Any, password: Any) -> User | None:
        """The user these credentials belong to, or None when they are wrong."""
        user = self.users.get(username) if isinstance(username, str) else None
        return user if user is not None and user.password == password else None

    def opaque_token(self, user: User) -> str:
        """A fresh v2 token for *user* (base64 of ``<tenant>,<uuid4>``)."""
        self._logins += 1
        token = opaque(TENANT, self.rng.getrandbits(128), self.fixture.token_seed,
                              self._logins)
        self.tokens[token] = (user, time.time())
        return token

    def jwt_token(self, user: User, ttl: float) -> str:
        """A fresh legacy-login JWT for *user*, its ``exp`` *ttl* seconds after ``iat``."""
        self._logins += 1
        now = time.time()
        token = jwt(key=self._jwt_key, subject=user.email, user_id=user.id, issued=now,
                           ttl=ttl, token_id=f"AT.{self._logins}.{self.rng.getrandbits(64):016x}")
        self.tokens[token] = (user, now)
        return token

    # -- cases ----------------------------------------------------------------------------

    def create_case(self, payload: JsonObj, proband_sample: str, user: User) -> Case:
        """Store a validated create body as a new case."""
        now = time.time()
        name = f"EMG{self._next_name:09d}"
        self._next_name += 1
        status = "pending" if payload.get("should_upload") is True else "uploading"
        case = Case(name=name, id=self._next_case_id, payload=payload,
                    proband_sample=proband_sample, creator=user, created=now, status=status,
                    status_change=now, clock=now,
                    participants=[{"id": user.id, "name": user.name}])
        self._next_case_id += 1
        case.reached[status] = now
        self.cases[name] = case
        if status in NEXT_STATUS:
            self.advancing.add(name)
        self._index_samples(case)
        return case

    def _index_samples(self, case: Case) -> None:
        td = case.payload["test_data"]
        patients = td["patients"]
        members = [patients[s] for s in ("proband", "mother", "father") if s in patients]
        members += patients.get("other", [])
        created = rfc1123(case.created)
        for patient in members:
            name = patient.get("fastq_sample") or patient.get("pending_sample_name")
            if not name:
                continue
            hit = {"id": self._next_sample_id, "name": name, "sample_type": td["sample_type"],
                   "note": case.name, "created": created}
            case.sample_ids.setdefault(name, self._next_sample_id)
            self._next_sample_id += 1
            self.samples.setdefault(name, []).append(hit)
        for sample in td.get("samples", []):
            if sample["fastq"] not in case.sample_ids:
                case.sample_ids[sample["fastq"]] = self._next_sample_id
                self._next_sample_id += 1

    def find_samples(self, query: str, *, exact: bool) -> list[JsonObj]:
        """Sample hits whose name equals (or, not exact, contains) *query*; a sample of a case
        in the trash is not found (inferred: the trash bin keeps its cases out of searches)."""
        if exact:
            found = list(self.samples.get(query, ()))
        else:
            found = [h for name, hits in self.samples.items() if query in name for h in hits]
        return [h for h in found if not self._trashed(h.get("note"))]

    def _trashed(self, case: Any) -> bool:
        held = self.cases.get(case) if isinstance(case, str) else None
        return held is not None and held.status == "trash"

    # -- lifecycle ------------------------------------------------------------------------

    def advance_due(self, step: float | None, now: float | None = None) -> list[StatusChange]:
        """Apply every automatic step due by *now*; *step* is seconds per step (None: never)."""
        if step is None or not self.advancing:
            return []
        now = time.time() if now is None else now
        changes: list[StatusChange] = []
        for name in list(self.advancing):
            case = self.cases[name]
            while case.status in NEXT_STATUS and now - case.clock >= step:
                case.clock += step
                changes.append(self._set(case, NEXT_STATUS[case.status], case.clock))
            if case.status not in NEXT_STATUS:
                self.advancing.discard(name)
        return changes

    def set_status(self, case: Case, status: str, now: float | None = None, *,
                   by: User | None = None) -> StatusChange | None:
        """Change a case's status (no rule checks); None when it already has that status.

        *by* is the user who asked (the signer when the case is finalized; else its creator).
        """
        if status == case.status:
            return None
        now = time.time() if now is None else now
        if status == "finalized":
            case.signer, case.signed = by or case.creator, now
        change = self._set(case, status, now)
        case.clock = now
        if status in NEXT_STATUS:
            self.advancing.add(case.name)
        else:
            self.advancing.discard(case.name)
        return change

    def _set(self, case: Case, status: str, when: float) -> StatusChange:
        previous, case.status, case.status_change = case.status, status, when
        case.reached.setdefault(status, when)
        if status == "delivered" and case.delivered is None:
            case.delivered = when
        if status == "finalized" and not case.reports:
            for kind in ("pdf", "json"):
                case.reports.append({"id": self._next_report_id, "type": kind,
                                     "created": rfc1123(when)})
                self._next_report_id += 1
        return StatusChange(case.name, status, previous, when)

    def add_preset_group(self, case: Case, body: JsonObj) -> JsonObj:
        """Store a preset group on a case; answer its ``{"id", "name"}``."""
        group = {"id": self._next_group_id, "name": body["name"], "filter": body.get("filter")}
        self._next_group_id += 1
        case.preset_groups.append(group)
        return {"id": group["id"], "name": group["name"]}
