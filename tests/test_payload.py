"""Validation stages and payload mapping on small hand-made families."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from batch.manifest import OFFICIAL_COLUMNS, Family, Row, read_manifest
from batch.payload import (
    BuildError,
    CachedResolver,
    ResolveError,
    build_payload,
    check_family,
    check_manifest_wide,
    file_type,
    is_date,
    is_integer,
    js_length,
    parse_date,
)
from batch.payload.rules import is_id
from tests.resolver_fake import FixtureResolver

COLUMNS = (*OFFICIAL_COLUMNS, "Lab")


def _family(*rows: dict[str, str | None], columns: tuple[str, ...] = COLUMNS) -> Family:
    base: dict[str, str | None] = {
        "Family Id": "F1",
        "Sex": "m",
        "Phenotypes": "unaffected",
        "Case Type": "Exome",
    }
    built = []
    for number, cells in enumerate(rows, start=3):
        merged = (
            {**base, **cells}
            if number == 3
            else {"Family Id": "F1", "Sex": "f", "Phenotypes": "unaffected", **cells}
        )
        built.append(Row(number, {k: v for k, v in merged.items() if v is not None}))
    return Family("F1", tuple(built), columns)


VCF: dict[str, str | None] = {
    "Files Names": "/a/S1.vcf.gz",
    "BioSample Name": "S1",
    "Storage Provider Id": "461",
}


async def _messages(family: Family) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for problem in await check_family(family, FixtureResolver(), file="m.csv"):
        if problem.severity == "error":
            found.setdefault(problem.row or 0, []).append(problem.message)
    return found


async def _payload(family: Family) -> dict[str, Any]:
    return await build_payload(family, FixtureResolver())


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2024-02-29", True),
        ("2023-02-29", False),
        ("2023-04-31", False),
        ("2020/1/5", True),
        ("2020-1/5", True),
        ("31/12/2025", False),
        ("2025.12.31", False),
        ("20251231", False),
        ("2023-13-01", False),
        ("2023-00-10", False),
        ("1900-02-29", False),
        ("0000-02-29", True),  # year 0 is a leap year for the official rule
    ],
)
def test_dates(text: str, valid: bool) -> None:
    assert is_date(text) is valid
    assert (parse_date(text) is not None) is (valid and not text.startswith("0000"))


def test_small_rules() -> None:
    assert is_integer(" 007 ") and not is_integer("-3") and not is_integer("1.5")
    assert is_id(" 007 ") and is_id("9" * 18) and not is_id("9" * 19) and not is_id("x")
    assert not is_integer("") and not is_integer("١٢") and not is_integer("1_000")
    assert not is_date("٢٠٢٤-01-01")  # digits are ASCII digits, as in JavaScript
    assert js_length("a😀") == 3
    assert file_type("x.g.vcf.gz") == "vcf" and file_type("x.gvcf") == "vcf"
    assert file_type("x.cram") == "fastq" and file_type("x.bw") is None


async def test_envelope_and_test_data_mapping() -> None:
    family = _family(
        {
            **VCF,
            "Execute Now": "False",
            "Opt In": "FALSE",
            "Boost Genes": "TRUE",
            "Gene List Id": "01",
            "Kit Id": "007",
            "Label Id": " 13 ; 14 ;",
            "Due Date": "2025/3/7",
            "Lab": "Example",
            "Selected Preset": "",
            "Assign To": "a@b.org",
        }
    )
    payload = await _payload(family)
    data = payload["test_data"]
    assert payload["should_upload"] is True and payload["sharing_level"] == 0
    assert data["boostGenes"] is True
    assert data["gene_list"] == {"id": 1, "type": "all"}
    assert data["sequence_info"] == {"kit_id": 7}
    assert data["labels"] == [13, 14]
    assert data["due_date"] == "2025/3/7"
    assert data["extra_data"] == {"Lab": "Example"}  # action columns never leak
    assert data["selected_preset_set"] == ""
    assert "notes" not in data
    assert data["sample_type"] == "vcf"
    assert data["samples"][0]["sampleFiles"][0]["vcf_column_name"] == "S1"


async def test_gene_list_existing_and_defaults() -> None:
    data = (await _payload(_family({**VCF, "Gene List Id": "000120"})))["test_data"]
    assert data["gene_list"] == {"id": 120, "type": "existing"}
    payload = await _payload(_family({**VCF, "Gene List Id": "0"}))
    assert payload["test_data"]["gene_list"]["type"] == "existing"
    assert payload["should_upload"] is False and payload["sharing_level"] == 1


async def test_patients_related_and_parents() -> None:
    family = _family(
        {**VCF, "Phenotypes": "Seizure;Ataxia"},
        {"Relation": "mother", "Phenotypes": "seizure"},
        {"Relation": "sibling", "Phenotypes": "Seizure", "Date Of Birth": "2023-02-30"},
        {"Relation": "sibling", "Phenotypes Id": "HP:0001250"},
    )
    patients = (await _payload(family))["test_data"]["patients"]
    assert patients["proband"]["mother"] == "mother" and "father" not in patients["proband"]
    assert patients["mother"]["healthy"] is True
    assert patients["mother"]["pending_sample_name"] == ""
    first, second = patients["other"]
    assert first["id"] == "sibling" and second["id"] == "sibling_1"
    assert first["phenotypes"] == [{"name": "Seizure", "related": True}]
    assert first["healthy"] is False and first["date_of_birth"] == "2023-02-30"
    assert second["phenotypes"][0]["related"] is False  # a name never matches an id


async def test_basespace_alias_auto_and_existing() -> None:
    auto = _family(
        {
            "Files Names": "auto",
            "BioSample Name": "BS-A02",
            "Storage Provider Id": "900",
            "Default Project": "NovaSeq-Run-2024-01",
        }
    )
    assert await _messages(auto) == {}
    files = (await _payload(auto))["test_data"]["samples"][0]["sampleFiles"]
    assert files and all(f["path"].startswith("/projects/4100101/") for f in files)
    assert files[0]["filename"].startswith("BS-A02_")
    existing = _family({"Files Names": "existing", "BioSample Name": "EX001"})
    assert (await _payload(existing))["test_data"]["samples"][0] == {"id": 880001, "fastq": "EX001"}
    unknown = _family({"Files Names": "existing", "BioSample Name": "EX999"})
    assert await _messages(unknown) == {3: ["BioSample Name EX999 is not an existing sample"]}


async def test_auto_errors() -> None:
    on_s3 = _family(
        {
            "Files Names": "auto",
            "BioSample Name": "B",
            "Storage Provider Id": "461",
            "Default Project": "P",
        }
    )
    assert await _messages(on_s3) == {
        3: ["Storage Provider Id should be basespace if Files Names is auto"]
    }
    unknown = _family(
        {
            "Files Names": "auto",
            "BioSample Name": "B",
            "Storage Provider Id": "777",
            "Default Project": "P",
        }
    )
    assert await _messages(unknown) == {3: ["Storage Provider Id-Storage provider 777 not found"]}
    missing = _family(
        {
            "Files Names": "auto",
            "BioSample Name": "NOPE",
            "Storage Provider Id": "900",
            "Default Project": "Big-Cohort",
        }
    )
    assert "no sample files found" in (await _messages(missing))[3][0]


async def test_build_error_for_unknown_plain_storage() -> None:
    family = _family({**VCF, "Storage Provider Id": "777"})
    assert await _messages(family) == {}
    with pytest.raises(BuildError, match="Storage provider 777 not found"):
        await _payload(family)


async def test_relation_errors_mask_field_errors() -> None:
    family = _family({**VCF, "Sex": "X"}, {"Relation": "Proband"})
    lower_case = "relations are lower case: proband, mother, father, sibling"
    assert await _messages(family) == {4: [f"Relation Proband is not valid: {lower_case}"]}
    none = _family({**VCF, "Relation": "Proband"})  # one message, where the official CLI has two
    assert await _messages(none) == {3: [f"Relation Proband is not valid: {lower_case}"]}


async def test_field_and_type_checks() -> None:
    family = _family(
        {**VCF, "Execute Now": "yes", "Label Id": "x", "Clinical Notes": "a" * 4001},
        {
            "Relation": "mother",
            "Files Names": "/a/M.fq.gz",
            "BioSample Name": "M",
            "Storage Provider Id": "461",
        },
    )
    assert await _messages(family) == {
        3: [
            'Execute Now is not "true" or "false"',
            "Label Id: x not valid",
            "Clinical Notes should be less than 4000 characters",
        ]
    }
    mixed = _family(
        VCF,
        {
            "Relation": "mother",
            "Files Names": "/a/M.fq.gz",
            "BioSample Name": "M",
            "Storage Provider Id": "461",
        },
    )
    assert await _messages(mixed) == {
        3: ["Sample Type is not unique per Family Id"],
        4: ["Sample Type is not unique per Family Id"],
    }
    viz = _family({**VCF, "Visualization Files": "/a/x.bam;/a/y.cram;/a/z.txt"})
    assert await _messages(viz) == {
        3: [
            "Visualization file: /a/z.txt not valid",
            "Visualization Files bam files: /a/x.bam;/a/y.cram are more than 1",
        ]
    }


async def test_gender_column_choice() -> None:
    columns = (*(c for c in COLUMNS if c != "Sex"), "Gender")
    family = _family({**VCF, "Sex": None, "Gender": "female"}, columns=columns)
    assert (await _payload(family))["test_data"]["patients"]["proband"]["gender"] == "Female"
    with_sex = _family({**VCF, "Sex": "", "Gender": "female"}, columns=(*COLUMNS, "Gender"))
    payload = await _payload(with_sex)
    assert payload["test_data"]["patients"]["proband"]["gender"] == "Unknown"


async def test_update_only_family_is_not_checked() -> None:
    family = _family({"Case Id": "EMG1", "Sex": "X"})
    assert await check_family(family, FixtureResolver(), file="m.csv") == []


def _manifest(tmp_path: Path, rows: list[dict[str, str]], extra: tuple[str, ...] = ()) -> Path:
    columns = (*OFFICIAL_COLUMNS, *extra)
    lines = ["[Data]", ",".join(columns)]
    lines += [",".join(row.get(c, "") for c in columns) for row in rows]
    path = tmp_path / "m.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_manifest_wide_checks(tmp_path: Path) -> None:
    rows = [
        {
            "Family Id": "A",
            "BioSample Name": "S1",
            "Files Names": "/x/S1.vcf",
            "Sex": "m",
            "Date Of Birth": "2999-01-01",
            "Assign To": "nobody",
            "Set Status": "done",
            "Preset Gene Lists": "12:Epi;x",
        },
        {
            "Family Id": "B",
            "BioSample Name": "S1",
            "Files Names": "/x/S1.vcf",
            "Sex": "m",
            "Set Status": "custom_status_2",
        },
        {"Family Id": "A", "BioSample Name": "P1", "Relation": "mother", "Sex": "f"},
        {"Family Id": "C", "BioSample Name": "P1", "Sex": "f"},
    ]
    extra = ("Assign To", "Set Status", "Preset Group", "Preset Gene Lists")
    manifest = read_manifest(_manifest(tmp_path, rows, extra))
    problems = check_manifest_wide(manifest, today=dt.date(2025, 1, 1))
    found = {(p.row, p.column, p.severity) for p in problems}
    assert (5, "Family Id", "warning") in found  # A is split
    assert (4, "BioSample Name", "warning") in found  # S1 with files in A and B: accepted
    assert (6, "BioSample Name", "warning") in found  # pending P1 in A and C
    assert (3, "Date Of Birth", "warning") in found
    assert {(3, "Assign To"), (3, "Set Status"), (3, "Preset Gene Lists"), (3, "Preset Group")} <= {
        (p.row, p.column) for p in problems if p.severity == "error"
    }
    assert all(p.row != 4 or p.column != "Set Status" for p in problems)


async def test_cached_resolver_asks_once() -> None:
    inner = FixtureResolver()
    cached = CachedResolver(inner)
    for _ in range(3):
        assert (await cached.storage(461))["scheme"] == "s3"
        with pytest.raises(ResolveError, match="777"):
            await cached.storage(777)
        assert await cached.list_dir(900, "/projects")
        assert await cached.find_sample("EX001") is not None
    assert inner.calls == {"storage": 2, "list_dir": 1, "find_sample": 1}
