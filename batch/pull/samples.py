"""``pull samples``: which case holds each sample, one row per sample and case, through the same
look-up as the guard against a second case (``run/identity.py``).

A sample is looked up by name (``GET /api/sample/?query=…&sampleType=fastq&exact_match=true``);
a hit's ``note`` names its case, and each case found is read once (``GET /api/test/{case}/``,
shared by every sample of it) for its type, status and creation time. A sample in no case is
a row that says so (``cases`` 0). Same client, limiter, retries and bounded pool as ``run``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from batch.api import Client
from batch.errors import ApiError, AuthError
from batch.outputs import write_table
from batch.pull.tables import TableResult
from batch.run.pool import run_pool

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
