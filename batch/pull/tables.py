"""The table pulls: which cases (or samples) a pull is about, and their tables (``pull
candidates``, ``pull info``, ``pull samples``).

Which cases a pull is about: from a manifest (its Case Ids, else its ledger's cases), from a
ledger, or named on the command line; and which samples (``pull samples``).

``pull candidates`` and ``pull info``: many cases, one table (a row per tagged variant, or
per case), through the same client, limiter and worker pool as ``run``.

``pull samples``: which case holds each sample, one row per sample and case, through the same
look-up as the guard against a second case (``run/identity.py``).

A sample is looked up by name (``GET /api/sample/?query=…&sampleType=fastq&exact_match=true``);
a hit's ``note`` names its case, and each case found is read once (``GET /api/test/{case}/``,
shared by every sample of it) for its type, status and creation time. A sample in no case is
a row that says so (``cases`` 0). Same client, limiter, retries and bounded pool as ``run``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from batch.api import Client
from batch.errors import ApiError, AuthError
from batch.ledger import Ledger, default_path
from batch.manifest import read_manifest
from batch.outputs import write_table
from batch.run.pool import run_pool


def cases_from_manifest(path: Path, ledger_path: Path | None = None) -> list[str]:
    """Case names of a manifest: each family's ``Case Id``, else the case its ledger (default
    ``<stem>.ledger.sqlite``) recorded.

    Families with neither are left out (they have no case yet).
    """
    manifest = read_manifest(path)
    recorded: dict[str, str] = {}
    ledger_path = ledger_path or default_path(path)
    if ledger_path.exists():
        with Ledger.open(ledger_path, create=False) as ledger:
            recorded = {f.family_id: f.case_name for f in ledger.iter_families() if f.case_name}
    names = [family.case_id or recorded.get(family.family_id) for family in manifest.families()]
    return list(dict.fromkeys(n for n in names if n))


def cases_from_ledger(path: Path) -> list[str]:
    """Every case name a ledger recorded, in manifest order."""
    with Ledger.open(path, create=False) as ledger:
        names = [f.case_name for f in ledger.iter_families() if f.case_name]
    return list(dict.fromkeys(names))


def samples_from_manifest(path: Path) -> list[str]:
    """Every ``BioSample Name`` of a manifest (each family member's), in file order, once."""
    manifest = read_manifest(path)
    names = (cells[0].strip() for _, cells in manifest.cell_rows(["BioSample Name"]))
    return list(dict.fromkeys(name for name in names if name))


def split_cases(values: Iterable[str]) -> list[str]:
    """Case names from repeated or comma-separated options, duplicates dropped."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return list(dict.fromkeys(names))


INFO_COLUMNS = ("case", "status", "created", "creator", "creator_id", "last_update", "error")
CANDIDATE_COLUMNS = ("case", "gene", "variant", "tag", "transcript", "hgvs_c", "hgvs_p",
                     "zygosity", "tagged_by", "tagged_at", "status", "creator", "creator_id",
                     "created", "last_update", "error")


@dataclass(slots=True)
class TableResult:
    """Rows pulled for many cases, the file they went to, and how many cases failed."""

    rows: list[dict[str, object]]
    columns: tuple[str, ...]
    failed: list[str]
    out: Path | None = None

    @property
    def exit_code(self) -> int:
        """0 when every case was read, 1 when some failed."""
        return 1 if self.failed else 0


Reader = Callable[[str], Awaitable[list[dict[str, object]]]]


def _info_row(case: str, info: Mapping[str, Any]) -> dict[str, object]:
    creator = info.get("creator")
    creator = creator if isinstance(creator, dict) else {"name": creator}
    return {
        "case": case,
        "status": info.get("status"),
        "created": info.get("created"),
        "creator": creator.get("name"),
        "creator_id": creator.get("id"),
        "last_update": info.get("last_update"),
        "error": None,
    }


def _error_row(case: str, err: ApiError) -> dict[str, object]:
    return {"case": case, "error": f"{err.message} (HTTP {err.status})" if err.status
            else err.message}


async def _per_case(
    cases: Sequence[str], concurrency: int, read: Reader
) -> tuple[list[dict[str, object]], list[str]]:
    """Run ``read(case) -> rows`` over *cases* in the pool; rows come back in input order."""
    found: dict[str, list[dict[str, object]]] = {}
    failed: set[str] = set()

    async def work(case: str) -> None:
        try:
            found[case] = await read(case)
        except AuthError:
            raise
        except ApiError as err:
            failed.add(case)
            found[case] = [_error_row(case, err)]

    await run_pool(cases, work, concurrency=concurrency)
    rows = [row for case in cases for row in found.get(case, ())]
    return rows, [c for c in cases if c in failed]


async def pull_info(
    client: Client, cases: Sequence[str], *, concurrency: int = 8, out: Path | None = None
) -> TableResult:
    """Case info (status, creation time, creator, last update) of many cases, one row each."""

    async def read(case: str) -> list[dict[str, object]]:
        return [_info_row(case, await client.case_info(case))]

    rows, failed = await _per_case(cases, concurrency, read)
    result = TableResult(rows, INFO_COLUMNS, failed)
    if out is not None:
        result.out = write_table(rows, out, columns=INFO_COLUMNS, sheet="Cases")
    return result


async def pull_candidates(
    client: Client, cases: Sequence[str], *, concurrency: int = 8, out: Path | None = None
) -> TableResult:
    """The tagged variants of many cases in one table, each row with its case's info.

    A case without tagged variants still has one row (its info), so every case shows.
    """

    async def read(case: str) -> list[dict[str, object]]:
        info = _info_row(case, await client.case_info(case))
        hits = await client.candidates(case)
        return [{**info, **_flat(hit), "case": case} for hit in hits] or [info]

    rows, failed = await _per_case(cases, concurrency, read)
    extra = [k for row in rows for k in row if k not in CANDIDATE_COLUMNS]
    columns = (*CANDIDATE_COLUMNS[:-1], *dict.fromkeys(extra), CANDIDATE_COLUMNS[-1])
    result = TableResult(rows, columns, failed)
    if out is not None:
        result.out = write_table(rows, out, columns=columns, sheet="Candidates")
    return result


def _flat(hit: Mapping[str, Any]) -> dict[str, object]:
    """Scalars stay; nested values become JSON text (one cell each)."""
    return {str(k): v if v is None or isinstance(v, str | int | float | bool)
            else json.dumps(v, ensure_ascii=False) for k, v in hit.items()}


SAMPLE_COLUMNS = ("sample", "cases", "case", "case_type", "status", "created", "error")


class CaseFacts:
    """Type, status and creation time of cases, each case read once however many samples
    name it (concurrent askers wait for the one request)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._known: dict[str, dict[str, object] | ApiError] = {}
        self._reading: dict[str, anyio.Event] = {}

    async def get(self, case: str) -> dict[str, object]:
        """The facts of *case*; its ``ApiError`` (for every asker) when it cannot be read."""
        while case not in self._known:
            if case in self._reading:
                await self._reading[case].wait()
                continue
            self._reading[case] = anyio.Event()
            try:
                self._known[case] = _facts(await self.client.get_case(case))
            except AuthError:
                raise
            except ApiError as err:
                self._known[case] = err
            finally:
                self._reading.pop(case).set()
        found = self._known[case]
        if isinstance(found, ApiError):
            raise found
        return found


def _facts(data: Mapping[str, Any]) -> dict[str, object]:
    return {"case_type": data.get("type"), "status": data.get("status"),
            "created": data.get("created")}


async def sample_rows(client: Client, facts: CaseFacts, sample: str) -> list[dict[str, object]]:
    """One row per case that holds *sample*, or one row saying it is in none."""
    hits = await client.find_samples(sample, exact=True)
    cases = list(dict.fromkeys(str(h.get("note") or "") for h in hits))
    cases = [c for c in cases if c.startswith("EMG")]  # as the duplicate guard reads notes
    if not cases:
        return [{"sample": sample, "cases": 0, "error": None}]
    rows: list[dict[str, object]] = []
    for case in cases:
        row: dict[str, object] = {"sample": sample, "cases": len(cases), "case": case}
        try:
            row.update(await facts.get(case), error=None)
        except AuthError:
            raise
        except ApiError as err:
            row["error"] = _said(err)
        rows.append(row)
    return rows


def _said(err: ApiError) -> str:
    return f"{err.message} (HTTP {err.status})" if err.status else err.message


async def pull_samples(
    client: Client, samples: Sequence[str], *, concurrency: int = 8, out: Path | None = None
) -> TableResult:
    """Which case holds each of *samples*: rows in input order; a sample whose look-up (or one
    of whose cases) failed is counted failed, its row holding the error."""
    found: dict[str, list[dict[str, object]]] = {}
    facts = CaseFacts(client)

    async def work(sample: str) -> None:
        try:
            found[sample] = await sample_rows(client, facts, sample)
        except AuthError:
            raise
        except ApiError as err:
            found[sample] = [{"sample": sample, "error": _said(err)}]

    await run_pool(samples, work, concurrency=concurrency)
    rows = [row for sample in samples for row in found.get(sample, ())]
    failed = list(dict.fromkeys(str(r["sample"]) for r in rows if r.get("error")))
    result = TableResult(rows, SAMPLE_COLUMNS, failed)
    if out is not None:
        result.out = write_table(rows, out, columns=SAMPLE_COLUMNS, sheet="Samples")
    return result
