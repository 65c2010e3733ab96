"""Every manifest of the official CLI v36 corpus, compared as its README says."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from batch.errors import ManifestError
from batch.manifest import Manifest, read_manifest
from batch.outputs import write_results_csv
from batch.payload import BuildError, build_payload, check_family, check_manifest_wide
from tests.resolver_fake import CONFORMANCE_DIR, FixtureResolver, server_message

MANIFESTS = sorted(CONFORMANCE_DIR.glob("[vx]*.csv"))
MANIFESTS = [path for path in MANIFESTS if not path.name.endswith(".results.csv")]
#: Files the official CLI rejects whole that emg-batch accepts on purpose (README).
ACCEPTED_ON_PURPOSE = {
    "x004_no_data_row",
    "x007_more_than_50_families",
    "x030_quoted_header_padding",
}


def _expected(path: Path) -> list[dict[str, Any]]:
    expected = path.with_name(path.stem + ".expected.jsonl")
    if not expected.exists():
        return []
    return [json.loads(line) for line in expected.read_text().splitlines() if line.strip()]


async def _run(
    manifest: Manifest, resolver: FixtureResolver
) -> tuple[dict[int, list[str]], list[tuple[str, dict[str, Any]]]]:
    """Validate like the official CLI: client stages, build, dry run from the fixture."""
    errors: dict[int, list[str]] = {}
    payloads: list[tuple[str, dict[str, Any]]] = []
    for problem in check_manifest_wide(manifest):
        if problem.severity == "error" and problem.row is not None:
            errors.setdefault(problem.row, []).append(problem.message)
    for family in manifest.families():
        if family.is_update_only:
            continue
        problems = await check_family(family, resolver, file=manifest.path.name)
        failed = [p for p in problems if p.severity == "error"]
        for problem in failed:
            assert problem.row is not None
            errors.setdefault(problem.row, []).append(problem.message)
        if failed:
            continue
        proband = family.proband
        assert proband is not None
        try:
            payload = await build_payload(family, resolver)
        except BuildError as exc:
            errors.setdefault(proband.number, []).append(exc.message)
            continue
        dry_run = resolver.data["dry_run_errors"].get(family.proband_sample)
        if dry_run is not None:
            errors.setdefault(proband.number, []).append(server_message(dry_run))
            continue
        payloads.append((family.family_id, payload))
    return errors, payloads


def _flagged(results: Path) -> set[int]:
    """Indexes (in record order) of the data records whose Errors cell is not empty."""
    records = list(csv.reader(results.open(encoding="utf-8", newline="")))
    start = (
        next(i for i, r in enumerate(records) if r and r[0] == "[Data]") + 1
        if any(r and r[0] == "[Data]" for r in records)
        else 0
    )
    header = records[start]
    if "Errors" not in header:
        return set()
    column = header.index("Errors")
    return {
        i
        for i, record in enumerate(records[start + 1 :])
        if len(record) > column and record[column]
    }


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.stem)
async def test_conformance(path: Path, tmp_path: Path) -> None:
    resolver = FixtureResolver()
    recorded = path.with_name(path.stem + ".results.csv")
    if not recorded.exists() and path.stem not in ACCEPTED_ON_PURPOSE:
        with pytest.raises(ManifestError) as caught:
            read_manifest(path)
        assert caught.value.problems
        return
    manifest = read_manifest(path)
    errors, payloads = await _run(manifest, resolver)
    expected = _expected(path)
    if path.stem in ACCEPTED_ON_PURPOSE:
        assert not errors, errors
        assert payloads
        return
    if path.name.startswith("v"):
        assert not errors, errors
        assert [fid for fid, _ in payloads] == [line["family_id"] for line in expected]
        for (fid, payload), line in zip(payloads, expected, strict=True):
            assert payload == line["payload"], fid
        recorded_ids = {line["family_id"]: line["case_id"] for line in expected}
        out = write_results_csv(manifest, tmp_path / "out.csv", case_ids=recorded_ids, errors={})
        assert out.read_bytes() == recorded.read_bytes()
        return
    case_ids: dict[str, str] = {}
    if not errors:  # creates happen; a create can still fail (x029)
        counter = resolver.data["case_name_start"]
        for fid, _payload in payloads:
            family = manifest.family(fid)
            failure = resolver.data["create_errors"].get(family.proband_sample)
            if failure is not None:
                assert family.proband is not None
                errors.setdefault(family.proband.number, []).append(server_message(failure))
            else:
                case_ids[fid] = f"EMG{counter:09d}"
                counter += 1
    assert errors
    out = write_results_csv(manifest, tmp_path / "out.csv", case_ids=case_ids, errors=errors)
    assert _flagged(out) == _flagged(recorded)
    if path.stem == "x029_create_phase_failure":
        assert out.read_bytes() == recorded.read_bytes()
