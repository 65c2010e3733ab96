"""The screen (``payload.screen``) passes a family only when ``check_family`` finds nothing in it.

It errs one way: a family it passes must be one the per-family checks pass with no problem and
no warning. Held on generated families whose every cell is drawn from typical values and the
values that trip a rule (blanks of every kind at the edges, case, calendar, list shapes,
BaseSpace file ids), on every manifest of the official CLI's recorded corpus, and end to end:
``validate`` of a large manifest finds the same problems screened or not.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch.errors import ManifestError
from batch.manifest import Family, Manifest, Problem, read_manifest
from batch.manifest import store as row_store
from batch.payload import (
    Lookups,
    OfflineResolver,
    Resolver,
    check_family,
    check_manifest_wide,
    families_to_check,
    screen,
)
from batch.run import validate
from batch.run.validate import check_manifest
from tests.manifests import HEADER, family_rows
from tests.resolver_fake import CONFORMANCE_DIR, FixtureResolver

_TYPICAL = family_rows("T", members=1)[0]
#: Per column: values that trip a rule, or sit just beside one. Storage 900 is BaseSpace in
#: the corpus fixture, 461 is S3, 999 is unknown.
_TRIALS: Mapping[str, Sequence[str]] = {
    "Family Id": ["F1", "F2", "F3", "", "F\r4", "\ufeffF5"],
    "Relation": ["proband", "mother", "father", "sibling", "", "Proband", " proband",
                 "mother ", "brother"],
    "Case Type": ["Exome", "", " "],
    "Files Names": [
        "/r/a_R1.fastq.gz;/r/a_R2.fastq.gz", "/r/a.vcf.gz", "/r/a.vcf", "/r/gvcf", "/d.x/gvcf",
        "x.bam", "a.fq.gz; b.fq.gz", "a.fastq.gz;;b.fastq.gz", "a.fastq.gz;", "auto", "AUTO",
        "existing", "", "file_id_123", "a.fastq.gz;b.vcf.gz", "a.txt", " a.fastq.gz",
        "a.fastq.gz\u00a0", "a.fastq.gz\r", "/projects/4100101/biosamples/5200001/datasets/x/7",
        "/r/x.gvcf", "/r/b_gvcf.gz",
    ],
    "Sample Type": ["", "FASTQ", "vcf", "Vcf", "bam", " fastq"],
    "BioSample Name": ["S1", "S-2", "", "S 3", "S\u00a04", "S\u00e9", "S\t5", "EX001", "\ufeffS6"],
    "Visualization Files": ["", "a.cram", "a.bam;b.cram", "a.tn.bw;a.baf.bw", "a.txt", "/d/123",
                            "a.cram;", " a.cram", "a.roh.bed;a.bam", "A.CRAM"],
    "Storage Provider Id": ["461", "900", "999", "", "x", " 461", "0461", "9" * 19, "1" * 4400],
    "Default Project": ["", "Proj"],
    "Execute Now": ["", "true", "FALSE", "True ", "yes", "tRue"],
    "Boost Genes": ["", "false", "no"],
    "Opt In": ["", "TRUE", "1"],
    "Sex": ["M", "F", "U", "male", "Female", "UNKNOWN", "", "x", " M", "m\u00a0", "\u212a",
            "UN\u212aNOWN"],
    "Phenotypes": ["", "unaffected", "Unaffected", "UNAFFECTED", "seizures", "a;b", " ", ";",
                   "unaffected ",
                   "a;" * 101, ";".join(["a"] * 101)],
    "Phenotypes Id": ["", "HP:0001250", "HP:1;HP:2", "HP:1; HP:2", "hp:1", "HP:1;;HP:2", " ",
                      ";", "HP:1;" * 101, ";".join(["HP:1"] * 101)],
    "Date Of Birth": ["", "2020-01-02", "2020/1/2", "2021-02-29", "2020-02-29", "0000-02-29",
                      "2020-13-01", "20-01-01", "2020-01-02 ", "\uff12020-01-01", "1900-02-29"],
    "Due Date": ["", "2030-12-31", "2030-04-31", "2030-1-1"],
    "Gene List Id": ["", "12", " 12", "1.5", "x", "\uff11\uff12", "007", "1" * 18, "1" * 19],
    "Kit Id": ["", "3", "-3"],
    "Intersect Bed Id": ["", "4", "4 4"],
    "Label Id": ["", "1", "1;2", "1; 2", "1;x", ";", "1;", "1;" + "2" * 19],
    "Clinical Notes": ["", "note", "n" * 2001, "n" * 4001, "\U0001f600" * 2100, "a,b\r\nc"],
    "Selected Preset": ["", "Default", "Other"],
}


def _cell(column: str) -> st.SearchStrategy[str]:
    """A column's usual value most of the time, else one of its trials."""
    usual = _TYPICAL.get(column, "")
    return st.sampled_from([usual] * len(_TRIALS[column]) + list(_TRIALS[column]))


_ROW = st.fixed_dictionaries({column: _cell(column) for column in HEADER})


def _write(path: Path, rows: Sequence[Mapping[str, str]], header: Sequence[str] = HEADER) -> Path:
    """An official batch CSV quoting every cell, so that blanks at a cell's edges are kept."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(["[Data]"])
        writer.writerow(header)
        writer.writerows([row.get(column, "") for column in header] for row in rows)
    return path


async def _wrongly_passed(manifest: Manifest, resolver: Resolver, *,
                          screened: bool = True) -> tuple[int, dict[str, list[str]]]:
    """How many families the screen passed, and those that ``check_family`` faults; unless
    *screened* is False, the screen must have been on."""
    marked = await families_to_check(manifest, Lookups(resolver), smallest=0)
    assert marked is not None or not screened
    if marked is None:  # not screened (a column named twice): every family is checked
        return 0, {}
    passed, wrong = 0, {}
    for family_id in manifest.family_ids:
        if family_id in marked:
            continue
        passed += 1
        found = await check_family(manifest.family(family_id), resolver, file="m.csv")
        if found:
            wrong[family_id] = [str(problem) for problem in found]
    return passed, wrong


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_ROW, min_size=1, max_size=8), offline=st.booleans())
def test_a_family_the_screen_passes_has_no_problem(rows: list[dict[str, str]],
                                                   offline: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        manifest = read_manifest(_write(Path(folder) / "m.csv", rows))
    resolver: Resolver = OfflineResolver() if offline else FixtureResolver()
    _, wrong = asyncio.run(_wrongly_passed(manifest, resolver))
    assert wrong == {}


@st.composite
def _nearly_clean(draw: st.DrawFn) -> list[dict[str, str]]:
    """Clean families (FASTQ or VCF, on an S3, BaseSpace or unknown storage), then a few
    cells changed to a trial value, and sometimes the rows shuffled: a single fault in an
    otherwise clean family is what a screen that forgot a rule lets through."""
    rows: list[dict[str, str]] = []
    for number in range(draw(st.integers(1, 4))):
        found = family_rows(f"F{number}", members=draw(st.integers(1, 4)))
        vcf = draw(st.booleans())
        storage = draw(st.sampled_from(["1", "461", "900"]))
        for row in found:
            row["Storage Provider Id"] = storage
            if vcf:
                row["Files Names"] = f"/a/{row['BioSample Name']}.vcf.gz"
                row["Visualization Files"] = f"/a/{row['BioSample Name']}.cram"
        rows += found
    for _ in range(draw(st.integers(0, 3))):
        column = draw(st.sampled_from(sorted(_TRIALS)))
        rows[draw(st.integers(0, len(rows) - 1))][column] = draw(st.sampled_from(_TRIALS[column]))
    return draw(st.permutations(rows)) if draw(st.booleans()) else rows


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_nearly_clean(), offline=st.booleans())
def test_a_nearly_clean_family_the_screen_passes_has_no_problem(rows: list[dict[str, str]],
                                                                offline: bool) -> None:
    test_a_family_the_screen_passes_has_no_problem.hypothesis.inner_test(rows, offline)


def _single_faults() -> list[dict[str, str]]:
    """One family of three per fault: every trial value of every column, on each row, of a
    FASTQ or a VCF family, on S3 or BaseSpace."""
    rows: list[dict[str, str]] = []
    number = 0
    for column, values in sorted(_TRIALS.items()):
        for value in values:
            for vcf in (False, True):
                for storage in ("461", "900"):
                    for target in (0, 1, 2):
                        found = family_rows(f"C{number}", members=3)
                        number += 1
                        for row in found:
                            row["Storage Provider Id"] = storage
                            if vcf:
                                row["Files Names"] = f"/a/{row['BioSample Name']}.vcf.gz"
                                row["Visualization Files"] = f"/a/{row['BioSample Name']}.cram"
                        found[target][column] = value
                        rows += found
    return rows


@pytest.mark.parametrize("offline", [False, True])
def test_every_single_fault_is_screened_one_way_only(tmp_path: Path, offline: bool) -> None:
    manifest = read_manifest(_write(tmp_path / "m.csv", _single_faults()))
    resolver: Resolver = OfflineResolver() if offline else FixtureResolver()
    passed, wrong = asyncio.run(_wrongly_passed(manifest, resolver))
    assert wrong == {}
    assert passed > len(manifest) // 4  # the harmless values pass


_CORPUS = sorted(CONFORMANCE_DIR.glob("*.csv"))


def test_the_corpus_is_screened_one_way_only() -> None:
    """Every manifest the official CLI was recorded on: no family passed wrongly, and the
    screen passes many (it is not a screen that marks everything)."""
    passed_in_all, readable = 0, 0
    for path in _CORPUS:
        try:
            manifest = read_manifest(path)
        except ManifestError:
            continue
        readable += 1
        passed, wrong = asyncio.run(_wrongly_passed(manifest, FixtureResolver(),
                                                    screened=False))
        assert wrong == {}, path.name
        passed_in_all += passed
    assert readable > 100
    assert passed_in_all > 100


def test_clean_families_are_all_passed(tmp_path: Path) -> None:
    rows = [row for n in range(50) for row in family_rows(f"F{n}", members=1 + n % 4)]
    manifest = read_manifest(_write(tmp_path / "m.csv", rows))
    marked = asyncio.run(families_to_check(manifest, Lookups(OfflineResolver()), smallest=0))
    assert marked == set()


def _varied(families: int) -> list[dict[str, str]]:
    """Mostly clean families; every 97th has one cell taken from the trials."""
    rows = []
    for n in range(families):
        found = family_rows(f"F{n:05d}", members=1 + n % 4)
        if n % 97 == 0:
            column = HEADER[1 + (n // 97) % (len(HEADER) - 1)]
            trials = _TRIALS[column]
            found[n % len(found)][column] = trials[(n // 97) % len(trials)]
        rows += found
    return rows


def test_a_large_manifest_finds_the_same_problems_screened_or_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole validation pass, read in small pieces so that families straddle them."""
    monkeypatch.setattr(row_store, "FRAME_BYTES", 50_000)
    monkeypatch.setattr(screen, "SCREEN_FROM", 1000)
    manifest = read_manifest(_write(tmp_path / "m.csv", _varied(3000)))

    def problems() -> list[str]:
        found = asyncio.run(check_manifest(manifest, FixtureResolver(), concurrency=4))
        return sorted(str(problem) for problem in found.problems)

    checked: list[int] = []
    real = check_family

    async def counted(family: Family, resolver: Resolver, *, file: str) -> list[Problem]:
        checked.append(1)
        return await real(family, resolver, file=file)

    monkeypatch.setattr(validate, "check_family", counted)
    screened = problems()
    assert 0 < len(checked) < len(manifest) // 4  # the screen was on: few families checked
    monkeypatch.setattr(screen, "SCREEN_FROM", 10**9)
    checked.clear()
    assert screened == problems()
    assert len(checked) == len(manifest)
    assert len(screened) > 10


def test_every_storage_is_asked_once(tmp_path: Path) -> None:
    rows = [row for n in range(30) for row in family_rows(f"F{n}")]
    for number, row in enumerate(rows):
        row["Storage Provider Id"] = ("461", "900", "999")[number % 3]
    for row in family_rows("E"):  # files already in Emedgene: check_family asks no storage
        rows.append({**row, "Files Names": "existing", "Storage Provider Id": "462"})
    manifest = read_manifest(_write(tmp_path / "m.csv", rows))
    resolver = FixtureResolver()
    asyncio.run(families_to_check(manifest, Lookups(resolver), smallest=0))
    assert resolver.calls["storage"] == 3


def test_a_server_that_cannot_be_reached_is_found_by_the_screen(tmp_path: Path) -> None:
    class Unreachable(OfflineResolver):
        async def storage(self, storage_id: int) -> Mapping[str, object]:
            raise ConnectionError("no route")

    manifest = read_manifest(_write(tmp_path / "m.csv", family_rows("F1")))
    with pytest.raises(ConnectionError):
        asyncio.run(families_to_check(manifest, Lookups(Unreachable()), smallest=0))


def test_what_is_not_screened(tmp_path: Path) -> None:
    rows = family_rows("F1")
    lookups = Lookups(OfflineResolver())
    small = read_manifest(_write(tmp_path / "small.csv", rows))
    assert asyncio.run(families_to_check(small, lookups)) is None
    twice = read_manifest(_write(tmp_path / "twice.csv", rows, [*HEADER, "Sex"]))
    assert asyncio.run(families_to_check(twice, lookups, smallest=0)) is None
    # a resume with few families left to check: those are checked one by one
    assert asyncio.run(families_to_check(small, lookups, smallest=1, pending=0)) is None
    assert asyncio.run(families_to_check(small, lookups, smallest=1, pending=1)) == set()


def test_the_frames_hold_every_cell_as_the_store_does(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """polars' reader drops a CR it takes for a line ending and a byte-order mark at the start
    of what it reads; the frames hold both, in pieces of any size."""
    monkeypatch.setattr(row_store, "FRAME_BYTES", 700)
    rows = [row for n in range(12) for row in family_rows(f"\ufeffF\r{n}")]
    for number, row in enumerate(rows):
        row["BioSample Name"] = f"\ufeffS\r{number}"
        row["Clinical Notes"] = "line\r\nline\r" if number % 2 else ""
    manifest = read_manifest(_write(tmp_path / "m.csv", rows))
    frames = list(manifest.frames())
    assert len(frames) > 3
    read = [values for frame in frames for values in frame.iter_rows(named=True)]
    assert [values.pop(row_store.ROW_NUMBER) for values in read] == \
        [manifest.row_number(position) for position in range(len(rows))]
    assert read == [{column: row.get(column, "") for column in HEADER} for row in rows]
    marked = asyncio.run(families_to_check(manifest, Lookups(OfflineResolver()), smallest=0))
    assert marked == {row["Family Id"] for row in rows}  # a CR in every name


def test_short_rows_read_as_blank_cells(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    rows = family_rows("F1", members=1)
    _write(path, rows)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('"F2","Exome","a.fastq.gz","","S9","","461"\n')
    manifest = read_manifest(path)
    frame = next(manifest.frames())
    assert frame.row(1)[len(HEADER) - 1] == ""
    marked = asyncio.run(families_to_check(manifest, Lookups(OfflineResolver()), smallest=0))
    assert marked == {"F2"}  # no phenotypes: a problem


_ACROSS: Mapping[str, Sequence[str]] = {
    "BioSample Name": ["F0-S0", "F1-S1", "SHARED", "", "F0-S0 ", "CR\r"],
    "Date Of Birth": ["", "2020-01-02", "2026-12-06", "2026-12-07", "2099-01-01", "2099/1/1",
                      "0000-01-01", "2026-12-6", "soon", "2026-13-01", " 2099-01-01"],
    "Assign To": ["", "a@b.org", "a@b.org;c@d.org", "nobody", "a@b.org; x", "a@b.org\r;x"],
    "Set Status": ["", "delivered", "custom_status_3", "custom_status_x", "Delivered"],
    "Preset Group": ["", "Group"],
    "Preset Gene Lists": ["", "12:Epilepsy", "12:Epilepsy;x", "12:", "9" * 19 + ":Big",
                          "\uff11:Wide"],
}
_TODAY = dt.date(2026, 12, 6)


@st.composite
def _across(draw: st.DrawFn) -> list[dict[str, str]]:
    """Families (some split in two blocks) whose samples, birth dates and action cells are
    drawn from values that the checks across families fault, or just do not."""
    rows: list[dict[str, str]] = []
    for number in range(draw(st.integers(1, 6))):
        rows += family_rows(f"F{number}", members=draw(st.integers(1, 3)))
    for row in rows:
        for column, values in _ACROSS.items():
            if draw(st.integers(0, 3)) == 0:
                row[column] = draw(st.sampled_from(values))
    return draw(st.permutations(rows)) if draw(st.booleans()) else rows


def _across_both(manifest: Manifest) -> tuple[list[str], list[str]]:
    """The checks across families, screened and not."""
    with mock.patch.object(screen, "SCREEN_FROM", 0):
        screened = [str(p) for p in check_manifest_wide(manifest, today=_TODAY)]
        assert screen.rows_to_check_across(manifest, ("Family Id",) * 3, "") is not None
    with mock.patch.object(screen, "SCREEN_FROM", 10**9):
        plain = [str(p) for p in check_manifest_wide(manifest, today=_TODAY)]
    return screened, plain


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_across(), actions=st.booleans())
def test_the_checks_across_families_find_the_same_screened_or_not(
        rows: list[dict[str, str]], actions: bool) -> None:
    header = [*HEADER, *(list(_ACROSS)[2:] if actions else [])]
    with tempfile.TemporaryDirectory() as folder:
        manifest = read_manifest(_write(Path(folder) / "m.csv", rows, header))
    screened, plain = _across_both(manifest)
    assert screened == plain


def test_a_large_manifest_is_checked_across_families_in_pieces(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(row_store, "FRAME_BYTES", 50_000)
    monkeypatch.setattr(screen, "SCREEN_FROM", 1000)
    rows = [row for n in range(1200) for row in family_rows(f"F{n:04d}", members=1 + n % 3)]
    for number, row in enumerate(rows):
        if number % 101 == 0:
            row["BioSample Name"] = "SHARED"
        if number % 211 == 0:
            row["Date Of Birth"] = "2099-01-01"
        if number % 307 == 0:
            row["Assign To"] = "nobody"
    manifest = read_manifest(_write(tmp_path / "m.csv", rows, [*HEADER, "Assign To"]))
    screened, plain = _across_both(manifest)
    assert screened == plain
    assert len(plain) > 20


@pytest.mark.parametrize(("column", "value"), [
    ("Storage Provider Id", "1" * 4400), ("Storage Provider Id", "9" * 19),
    ("Gene List Id", "1" * 19), ("Kit Id", "2" * 4400), ("Label Id", "1;" + "3" * 19)])
def test_an_id_too_long_to_send_is_refused_by_its_cell(tmp_path: Path, column: str,
                                                       value: str) -> None:
    """At most 18 digits: the server's ids are 64-bit, and a longer one would crash the JSON
    encoder (or Python's int) rather than fail as a cell."""
    rows = family_rows("F1")
    rows[0][column] = value
    manifest = read_manifest(_write(tmp_path / "m.csv", rows))
    found = asyncio.run(check_family(manifest.family("F1"), FixtureResolver(), file="m.csv"))
    assert [(p.column, p.severity) for p in found] == [(column, "error")]
    assert "not valid" in found[0].message
    marked = asyncio.run(families_to_check(manifest, Lookups(FixtureResolver()), smallest=0))
    assert marked == {"F1"}


def test_a_preset_gene_list_id_too_long_to_send_is_refused(tmp_path: Path) -> None:
    rows = family_rows("F1")
    rows[0].update({"Preset Group": "G", "Preset Gene Lists": "12:Ok;" + "9" * 19 + ":Big"})
    header = [*HEADER, "Preset Group", "Preset Gene Lists"]
    manifest = read_manifest(_write(tmp_path / "m.csv", rows, header))
    found = check_manifest_wide(manifest, today=_TODAY)
    assert [(p.column, p.message) for p in found] == \
        [("Preset Gene Lists", "not <id>:<name>: " + "9" * 19 + ":Big")]
    assert manifest.family("F1").actions.preset_gene_lists == ((12, "Ok"),)
