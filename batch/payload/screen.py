"""The screen: the families of a large manifest in which a check might find something.

``check_family`` runs a family's stages row by row, some 25 µs a family; on a large manifest
almost every family passes. The screen reads the row store as polars frames and marks,
with expressions over whole columns, every family in which any stage or warning of
``check_family`` *might* say something: a value off the usual shape, a look-up that the stages
make (``existing``, ``auto``, a BaseSpace file id), a relation count off. Only marked families
are checked; the others pass by construction.

The screen errs one way only. A family it passes is one that ``check_family`` passes with no
problem and no warning (``tests/test_screen.py`` holds it to that, on generated families and
on every manifest of the tests); a family it marks is simply checked. Its shapes are therefore
narrower than the rules: a date is ``YYYY-MM-DD``, an integer plain ASCII digits, a sample
name printable ASCII, every item of a list of files ends with a known suffix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from batch.manifest import Manifest
from batch.manifest.model import ID_DIGITS
from batch.manifest.store import ROW_NUMBER
from batch.payload.lookups import Lookups
from batch.payload.rules import (
    BAM_SUFFIXES,
    FAMILY_COLUMNS,
    FASTQ_SUFFIXES,
    GENDERS,
    NOTES_LIMIT,
    PHENOTYPE_LIMIT,
    RELATIONS,
    VCF_SUFFIXES,
    VIZ_SUFFIXES,
)

if TYPE_CHECKING:
    import polars as pl

#: Families from which a manifest is screened: below, checking each family (about 25 µs)
#: costs no more than importing polars (about 0.15 s) and reading the frames. Measured with
#: whole `validate` processes on trios: 0.45 s screened against 0.39 s at 2,000 families,
#: 0.56 against 0.58 s at 5,000, 0.97 against 1.36 s at 20,000.
SCREEN_FROM = 5_000

_BOOLS = ("", "true", "false", "True", "False", "TRUE", "FALSE")
_ID = rf"^[0-9]{{0,{ID_DIGITS}}}$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_LABELS = rf"^([0-9]{{1,{ID_DIGITS}}}(;[0-9]{{1,{ID_DIGITS}}})*)?$"
_NAME = r"^[\x21-\x7e]*$"
_VISIBLE = r"[\x21-\x3a\x3c-\x7e]"
_PHENOTYPE_IDS = r"^HP:[^;]*(;HP:[^;]*)*$"
#: An item whose last path segment has no dot: a BaseSpace file id, which needs a look-up.
_FILE_ID = r"(^|;)([^;]*/)?[^;/.]*(;|$)"
#: Notes this long pass whatever JavaScript counts (at most two units a character).
_NOTES_SURE = NOTES_LIMIT // 2


def _all_items(suffixes: Sequence[str]) -> str:
    """A cell whose every ``;`` item ends with one of *suffixes*."""
    ending = "(" + "|".join(re.escape(s) for s in suffixes) + ")"
    return rf"^[^;]*{ending}(;[^;]*{ending})*$"


async def families_to_check(manifest: Manifest, lookups: Lookups, *, pending: int | None = None,
                            smallest: int | None = None) -> set[str] | None:
    """The ids of the families ``check_family`` must see; every other family passes it.

    None when the manifest is not screened (fewer than *smallest* families, by default
    ``SCREEN_FROM``, are *pending*, by default all of them; two columns of one name; no
    ``Family Id`` column): then every family is checked. The look-up a check
    makes of every storage that holds files is made here, once per storage, so a server that
    cannot be reached is found as it is without the screen.
    """
    columns = manifest.columns
    smallest = SCREEN_FROM if smallest is None else smallest
    pending = len(manifest) if pending is None else pending
    if pending < smallest or len(set(columns)) != len(columns) or "Family Id" not in columns:
        return None
    import polars as pl

    cell = _Cells(columns)
    basespace: dict[str, bool] = {}
    pieces = []
    for frame in manifest.frames():  # a piece at a time: a whole frame costs 3x the file
        await _ask_storages(frame, columns, lookups, basespace)
        on_basespace = [value for value, yes in basespace.items() if yes]
        pieces.append(frame.select(_row_summary(cell, on_basespace)))
    rows = pl.concat(pieces)
    families = rows.group_by("Family Id").agg(_family_marked().alias("marked"))
    found = families.filter(pl.col("marked") | (pl.col("Family Id") == ""))
    return set(found.get_column("Family Id").to_list())


def rows_to_check_across(manifest: Manifest, columns: Sequence[str],
                         today: str) -> list[tuple[int, tuple[str, ...]]] | None:
    """``(row number, cells of *columns*)`` of the rows in which a check across families might
    find something, in file order; None when the manifest has fewer than ``SCREEN_FROM``
    families or two columns of one name (then every row is checked). *columns* are the
    family key, the sample name, the birth date and the action columns, in that order;
    *today* is today's date as ISO text.

    A row is kept when it holds an action cell, a birth date that is not an ISO date on or
    before *today*, or a sample name that rows of another family hold too.
    """
    header = manifest.columns
    if len(manifest) < SCREEN_FROM or len(set(header)) != len(header):
        return None  # checked row by row (as without the screen)
    import polars as pl

    cell = _Cells(header)
    cells = [cell(name).alias(f"c{i}") for i, name in enumerate(columns)]
    sample, born = pl.col("c1"), pl.col("c2")
    actions = [pl.col(f"c{i}") != "" for i in range(3, len(columns))]
    usual_date = born.str.contains(_DATE) & (born <= today)
    kept, hashes = [], []
    for frame in manifest.frames():
        rows = frame.select(pl.col(ROW_NUMBER), *cells)
        kept.append(rows.filter(pl.any_horizontal(*actions, (born != "") & ~usual_date)))
        # a name's hash is all that is kept of every row: few names are in two rows
        hashes.append(rows.filter(sample != "").select(ROW_NUMBER, sample.hash().alias("h")))
    named = pl.concat(hashes)
    again = named.filter(pl.col("h").is_duplicated()).get_column(ROW_NUMBER)
    found = pl.concat([*kept, _shared(manifest, cells, again)], how="diagonal").fill_null("")
    found = found.unique(ROW_NUMBER, keep="first", maintain_order=True).sort(ROW_NUMBER)
    return [(number, tuple(rest)) for number, *rest in found.iter_rows()]


def _shared(manifest: Manifest, cells: list[pl.Expr], rows: pl.Series) -> pl.DataFrame:
    """Of the rows numbered in *rows* (their sample name's hash is in another row too), those
    whose sample name rows of another family hold; their action and date cells blanked (a
    row kept for its sample alone has no action cell and no unusual date)."""
    import polars as pl

    if rows.is_empty():
        return pl.DataFrame({ROW_NUMBER: []}, schema={ROW_NUMBER: pl.UInt64})
    named = pl.concat([frame.filter(pl.col(ROW_NUMBER).is_in(rows.implode()))
                       .select(pl.col(ROW_NUMBER), *cells[:2]) for frame in manifest.frames()])
    families = pl.col("c0").n_unique().over("c1")
    return named.filter(families > 1)


async def _ask_storages(frame: pl.DataFrame, columns: Sequence[str], lookups: Lookups,
                        answers: dict[str, bool]) -> None:
    """Whether each storage cell (plain digits) of a row with files is BaseSpace, into
    *answers*: the look-up that ``check_family`` makes of every such storage, made once."""
    import polars as pl

    if "Storage Provider Id" not in columns or "Files Names" not in columns:
        return
    storage, files = pl.col("Storage Provider Id"), pl.col("Files Names")
    # the rows whose storage check_family asks: files (not existing), an id it can send
    cells = frame.filter((files != "") & (files != "existing") & (storage != "")
                         & storage.str.contains(_ID)).get_column("Storage Provider Id")
    for value in cells.unique().sort().to_list():
        if value not in answers:
            answers[value] = await lookups.is_basespace(int(value))


def _row_marked(cell: _Cells, basespace: list[str]) -> pl.Expr:
    """True on every row whose own cells some check might find something in."""
    import polars as pl

    relation = cell("Relation")
    proband = relation.is_in(["proband", ""])
    files = cell("Files Names")
    return pl.any_horizontal(
        ~relation.is_in([*RELATIONS, ""]),
        proband & ~_proband_fields(cell),
        ~_member_fields(cell, "Sex" if "Sex" in cell.columns else "Gender"),
        (files != "") & ~_file_fields(cell, basespace),
        (files == "") & ~_sample_type(cell, proband),
    )


def _kind(cell: _Cells) -> pl.Expr:
    """1 for a row of FASTQ files, 2 of VCF files, null for a row without files or another."""
    import polars as pl

    files = cell("Files Names")
    return pl.when(files.str.contains(_ALL_FASTQ)).then(1) \
        .when(files.str.contains(_ALL_VCF)).then(2).otherwise(None)


def _row_summary(cell: _Cells, basespace: list[str]) -> list[pl.Expr]:
    """What the family-wide part of the screen needs of a row: its family, whether the row
    is marked, its kind of files, its relation, and its case-level cells as one text (null
    on a member row where they are all blank)."""
    import polars as pl

    relation = cell("Relation")
    proband = relation.is_in(["proband", ""])
    present = [name for name in FAMILY_COLUMNS if name in cell.columns]
    case_cells = pl.concat_str([cell(name) for name in present], separator="\x1f") \
        if present else pl.lit("")
    return [
        pl.col("Family Id"),
        _row_marked(cell, basespace).alias("marked"),
        _kind(cell).alias("kind"),
        pl.when(proband).then(0).when(relation == "mother").then(1)
        .when(relation == "father").then(2).otherwise(3).cast(pl.Int8).alias("relation"),
        pl.when(proband | (case_cells.str.contains(r"[^\x1f]")))
        .then(case_cells).otherwise(None).alias("case"),
    ]


def _family_marked() -> pl.Expr:
    """True for a family with a marked row, a relation count off, FASTQ and VCF rows, or a
    member row with a case-level cell set that may differ from the proband's (a warning):
    with one proband, its case-level text and every member's that is not blank are one."""
    import polars as pl

    relation = pl.col("relation")
    return pl.any_horizontal(
        pl.col("marked").any(),
        (relation == 0).sum() != 1,
        (relation == 1).sum() > 1,
        (relation == 2).sum() > 1,
        pl.col("kind").drop_nulls().n_unique() > 1,
        pl.col("case").drop_nulls().n_unique() > 1,
    )


class _Cells:
    """``cell(name)``: the column called *name*, or ``""`` on every row when the header lacks
    it (``pl.col`` would fail)."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = frozenset(columns)

    def __call__(self, name: str) -> pl.Expr:
        import polars as pl

        return pl.col(name) if name in self.columns else pl.lit("")


def _proband_fields(cell: _Cells) -> pl.Expr:
    """The proband row's values pass every official check (stage 3, proband)."""
    import polars as pl

    def date(name: str) -> pl.Expr:
        value = cell(name)
        return (value == "") | (value.str.contains(_DATE)
                                & value.str.to_date("%Y-%m-%d", strict=False).is_not_null())

    return pl.all_horizontal(
        cell("Execute Now").is_in(_BOOLS), cell("Boost Genes").is_in(_BOOLS),
        cell("Opt In").is_in(_BOOLS), cell("Case Type") != "",
        cell("Gene List Id").str.contains(_ID), cell("Kit Id").str.contains(_ID),
        cell("Intersect Bed Id").str.contains(_ID), cell("Label Id").str.contains(_LABELS),
        date("Due Date"), date("Date Of Birth"),
        cell("Clinical Notes").str.len_chars() <= _NOTES_SURE,
    )


def _member_fields(cell: _Cells, sex_column: str) -> pl.Expr:
    """Every row's own values pass (stage 3, members): sample name, sex, phenotypes; and the
    warning that Phenotypes is ignored does not apply."""
    import polars as pl

    sex, ids, names = cell(sex_column), cell("Phenotypes Id"), cell("Phenotypes")
    # polars lower-cases as Python does (full Unicode case mapping): "UN\u212aNOWN" is "unknown"
    # to both, and no other letter outside ASCII lower-cases into these words
    unaffected = names.str.to_lowercase() == "unaffected"
    return pl.all_horizontal(
        cell("BioSample Name").str.contains(_NAME),
        sex.str.to_lowercase().is_in(list(GENDERS)),
        ids.str.contains(_VISIBLE) | names.str.contains(_VISIBLE),
        ids.str.count_matches(";", literal=True) < PHENOTYPE_LIMIT,
        names.str.count_matches(";", literal=True) < PHENOTYPE_LIMIT,
        (ids == "") | ids.str.contains(_PHENOTYPE_IDS),
        (ids == "") | (names == "") | unaffected,
    )


def _file_fields(cell: _Cells, basespace: list[str]) -> pl.Expr:
    """A row with files: a sample name, a storage, files of one known type that need no
    look-up, and (for any case) known visualization files with at most one BAM or CRAM."""
    import polars as pl

    files, viz = cell("Files Names"), cell("Visualization Files")
    storage = cell("Storage Provider Id")
    # a visualization file that ends with a known suffix has a dot: it is never a file id
    viz_ok = (viz == "") | pl.all_horizontal(
        viz.str.contains(_all_items(BAM_SUFFIXES + VIZ_SUFFIXES)),
        viz.str.count_matches(_BAM_ITEM) <= 1,
    )
    return pl.all_horizontal(
        cell("BioSample Name") != "",
        (storage != "") & storage.str.contains(_ID),
        ~(storage.is_in(basespace) & files.str.contains(_FILE_ID)),
        _kind(cell).is_not_null(),
        viz_ok,
    )


def _sample_type(cell: _Cells, proband: pl.Expr) -> pl.Expr:
    """A row without files: a known Sample Type, which the proband's row must have."""
    kind = cell("Sample Type")
    known = kind.str.to_lowercase().is_in(["fastq", "vcf"])
    return known | ((kind == "") & ~proband)


_ALL_FASTQ = _all_items(FASTQ_SUFFIXES)
_ALL_VCF = _all_items(VCF_SUFFIXES)
_BAM_ITEM = "(" + "|".join(re.escape(s) for s in BAM_SUFFIXES) + ")(;|$)"
