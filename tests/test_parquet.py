"""Parquet manifests: scalar columns as the text a CSV would hold; other columns refused
with the column, its type and what is expected. Files are real Parquet written by polars."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from batch.errors import ManifestError
from batch.manifest import OFFICIAL_COLUMNS, Manifest, read_manifest
from batch.payload import build_payload
from tests.resolver_fake import FixtureResolver

BASE = {"Family Id": ["F1"], "Case Type": ["Exome"], "Files Names": ["/a/S1.vcf"],
        "BioSample Name": ["S1"], "Storage Provider Id": [461], "Relation": ["proband"],
        "Sex": ["F"], "Phenotypes": ["unaffected"]}


def _write(tmp_path: Path, **columns: pl.Series | list[Any]) -> Path:
    frame = pl.DataFrame({**BASE, **{name.replace("_", " "): value
                                     for name, value in columns.items()}})
    path = tmp_path / "m.parquet"
    frame.write_parquet(path)
    return path


def _payload(manifest: Manifest) -> dict[str, Any]:
    (family,) = manifest.families()
    return asyncio.run(build_payload(family, FixtureResolver()))


@pytest.mark.parametrize(
    ("series", "type_name", "hint"),
    [
        (pl.Series([["HP:0001250", "HP:0001263"]]), "holds lists (List(String))",
         "join several values"),
        (pl.Series([{"a": 1, "b": "x"}]), "holds records of several fields (Struct(",
         "join several values"),
        (pl.Series([b"\x00\x01"], dtype=pl.Binary), "holds bytes (Binary)",
         "UTF-8 strings, not bytes"),
        (pl.Series([dt.timedelta(days=1)]), "holds values of type Duration(",
         "join several values"),
    ],
    ids=["list", "struct", "binary", "duration"],
)
def test_non_scalar_columns_name_column_type_and_expectation(
    tmp_path: Path, series: pl.Series, type_name: str, hint: str
) -> None:
    path = _write(tmp_path, Phenotypes_Id=series)
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    message = str(caught.value)
    assert message.startswith("m.parquet:1: Phenotypes Id: the column ")
    assert type_name in message
    assert "text, number, boolean or date expected" in message
    assert hint in message
    assert "\n" not in message and "Traceback" not in message


def test_several_bad_columns_are_counted(tmp_path: Path) -> None:
    path = _write(tmp_path, Phenotypes_Id=[["a"]], Label_Id=[[1, 2]])
    with pytest.raises(ManifestError, match=r"\(and 1 more such columns\)"):
        read_manifest(path)


def test_dates_and_datetimes_as_yyyy_mm_dd(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        Date_Of_Birth=[dt.date(2021, 3, 14)],
        Due_Date=[dt.datetime(2025, 12, 1)],
        Collected=pl.Series([dt.datetime(2024, 5, 6, 7, 8, 9)]),
        Kit_Id=[7.0],
        Boost_Genes=[True],
        Empty=pl.Series([None], dtype=pl.Null),
    )
    manifest = read_manifest(path)
    cells = manifest.family("F1").rows[0].cells
    assert cells["Date Of Birth"] == "2021-03-14"
    assert cells["Due Date"] == "2025-12-01"
    assert cells["Collected"] == "2024-05-06 07:08:09"  # a time of day is kept
    assert (cells["Kit Id"], cells["Boost Genes"], cells["Storage Provider Id"]) == (
        "7", "true", "461")
    assert "Empty" not in cells  # a null cell is absent
    payload = _payload(manifest)
    assert payload["test_data"]["patients"]["proband"]["date_of_birth"] == "2021-03-14"
    assert payload["test_data"]["due_date"] == "2025-12-01"
    assert payload["test_data"]["extra_data"] == {"Collected": "2024-05-06 07:08:09"}


def test_typed_parquet_sends_what_the_text_csv_sends(tmp_path: Path) -> None:
    parquet = read_manifest(_write(tmp_path, Date_Of_Birth=[dt.date(2021, 3, 14)]))
    names = [*BASE, "Date Of Birth"]
    csv = tmp_path / "m.csv"
    values = [str(BASE[name][0]) if name in BASE else "2021-03-14" for name in names]
    csv.write_text(",".join(names) + "\n" + ",".join(values) + "\n")
    assert _payload(parquet) == _payload(read_manifest(csv))
    assert set(OFFICIAL_COLUMNS) >= set(names)
