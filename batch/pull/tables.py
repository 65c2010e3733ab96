"""``pull candidates`` and ``pull info``: many cases, one table (a row per tagged variant, or
per case), through the same client, limiter and worker pool as ``run``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch.api import Client
from batch.errors import ApiError, AuthError
from batch.outputs import write_table
from batch.run.pool import run_pool

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
