"""The shortcuts that make a 100,000-family manifest quick give the answers of the long way.

Each shortcut is checked against the general path it stands in for: a family's lead row and
its plan, cells picked from rows with absent cells, the content hash's template, a birth date
told past without parsing, and the one-item and many-item forms of a ``;`` list.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch.manifest import Row, read_manifest, split_items
from batch.manifest.model import LEAD_COLUMNS, cells_text, content_hash
from batch.payload.checks import _past
from batch.payload.rules import parse_date
from batch.run.plan import plan_family

HEADER = "Family Id,Case Type,Files Names,BioSample Name,Relation,Sex,Phenotypes,Assign To,Case Id"


def _manifest(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "m.csv"
    path.write_text("\n".join(["[Data]", HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_the_lead_row_is_the_proband_or_else_the_first(tmp_path: Path) -> None:
    manifest = read_manifest(_manifest(
        tmp_path,
        "A,Exome,/a/m.vcf,AM,mother,F,unaffected,,",
        "A,Exome,/a/p.vcf,AP,proband,M,Seizures,x@example.com,",
        "B,Exome,/b/f.vcf,BF,father,M,unaffected,y@example.com,EMG1",
        "B,Exome,/b/m.vcf,BM,mother,F,unaffected,,",
    ))
    def lead_cells(row: Row | None) -> tuple[int, dict[str, str]]:
        assert row is not None
        return row.number, {k: v for k, v in row.cells.items() if k in LEAD_COLUMNS}

    (lead_a,), (lead_b,) = manifest.lead("A").rows, manifest.lead("B").rows
    assert (lead_a.number, lead_a.cells) == lead_cells(manifest.family("A").proband)
    assert (lead_b.number, lead_b.cells) == lead_cells(manifest.family("B").rows[0])
    for family_id in ("A", "B"):
        whole, lead = manifest.family(family_id), manifest.lead(family_id)
        assert (lead.case_id, lead.actions, lead.proband_sample) == \
            (whole.case_id, whole.actions, whole.proband_sample)
        assert plan_family(lead, None, "h") == plan_family(whole, None, "h")


def test_the_lead_row_with_a_column_named_twice(tmp_path: Path) -> None:
    """The rightmost present cell wins, as for the whole family; the lead row holds the same
    cells whichever way it was read."""
    path = tmp_path / "m.csv"
    path.write_text("[Data]\n" + HEADER + ",Assign To\n"
                    "A,Exome,/a/m.vcf,AM,mother,F,unaffected,,,\n"
                    "A,Exome,/a/p.vcf,AP,proband,M,Seizures,x@example.com,,y@example.com\n",
                    encoding="utf-8")
    manifest = read_manifest(path)
    whole, lead = manifest.family("A"), manifest.lead("A")
    assert lead.rows[0].cells == {k: v for k, v in whole.rows[1].cells.items()
                                  if k in LEAD_COLUMNS}
    assert (lead.case_id, lead.actions, lead.proband_sample) == \
        (whole.case_id, whole.actions, whole.proband_sample)
    assert lead.actions.assign_to == ("y@example.com",)


def test_picked_cells_read_absent_cells_as_empty(tmp_path: Path) -> None:
    manifest = read_manifest(_manifest(tmp_path, "A,Exome,/a/p.vcf,AP", "A,,,AM,mother,F"))
    wanted = ("Family Id", "Relation", "Nowhere", "BioSample Name", "Case Id")
    assert list(manifest.cell_rows(wanted)) == [
        (3, ("A", "", "", "AP", "")), (4, ("A", "mother", "", "AM", ""))]
    assert [manifest.row_cells(p) for p in manifest.row_positions("A")] == [
        dict(row.cells) for row in manifest.family("A").rows]


def test_the_hash_template_gives_the_hash_of_the_cells(tmp_path: Path) -> None:
    manifest = read_manifest(_manifest(
        tmp_path, "A,Exome,/a/p.vcf,AP,proband,M,Seizures,x@example.com,",
        "A,,/a/m.vcf,AM,mother,F,unaffected,,"))
    family = manifest.family("A")
    assert manifest.family_hash("A") == content_hash(cells_text(r.cells) for r in family.rows)
    assert manifest.family_hash("A") == family.row_hash


@pytest.mark.parametrize("text", [
    "2020-01-02", "2026-12-06", "2026-12-07", "2999-01-01", "2026-12-1 ", "2026-12-9 ",
    "2027-01-1 ", " 027-01-01", "2020-02-30", "2020-0a-01", "2026/12/07", "0000-01-01",
])
def test_a_past_iso_date_is_told_as_parsing_tells_it(text: str) -> None:
    today = dt.date(2026, 12, 6)
    parsed = parse_date(text)
    in_future = parsed is not None and parsed > today
    assert not (in_future and _past(text, today.isoformat()))


@given(st.text(alphabet="0123456789-/ ", min_size=8, max_size=12))
def test_no_future_date_is_told_past(text: str) -> None:
    today = dt.date(2026, 12, 6)
    parsed = parse_date(text)
    if parsed is not None and parsed > today:
        assert not _past(text, today.isoformat())


@given(st.text(alphabet="ab ;\t", max_size=12))
def test_split_items_one_item_or_many(cell: str) -> None:
    assert split_items(cell) == [item.strip() for item in cell.split(";") if item.strip()]
