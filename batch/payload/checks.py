"""Per-family validation: the official CLI's stages (BEHAVIOUR §5, 1-5), in order.

A stage that fails stops the family; later stages add nothing. Stages 1-3 (Family Id,
relations, field values) live here; stages 4-5 (file types, visualization files) in ``files``.
Messages are the official texts; each problem names row, column and value, with a hint.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from batch.errors import ResolveError
from batch.manifest import Family, Problem, Row, split_items
from batch.manifest.clip import quoted, shortened
from batch.payload.files import stage_file_types, stage_visualization
from batch.payload.lookups import Lookups
from batch.payload.resolve import Resolver
from batch.payload.rules import GENDERS, RELATIONS, is_bool, is_date, is_integer, js_length
from batch.payload.view import Report, View, plural

_SPACE = re.compile(r"\s")
_NOTES_LIMIT = 4000
_PHENOTYPE_LIMIT = 100
_AUTO_NOT_FOUND = (
    "Either of Storage Provider Id; Default Project or BioSample Name is not valid"
    " since no sample files found"
)


async def check_family(family: Family, resolver: Resolver, *, file: str) -> list[Problem]:
    """Every client-side stage of BEHAVIOUR §5 (1-5) with its look-ups; ``[]`` when OK.

    A family whose proband already has a ``Case Id`` is not checked (it is not created).
    """
    if family.is_update_only:
        return []
    report = Report(family, file)
    view = View(family)
    lookups = Lookups(resolver)
    stages = (
        _stage_family_id,
        _stage_relations,
        _stage_fields,
        stage_file_types,
        stage_visualization,
    )
    for stage in stages:
        await stage(view, lookups, report)
        if report.failed:
            break
    if not report.failed:
        _extra_warnings(view, report)
    return report.problems


async def _stage_family_id(view: View, lookups: Lookups, report: Report) -> None:
    if view.family.family_id == "":
        for row in view.rows:
            report.add(
                row,
                "Family Id is required",
                "Family Id",
                "every row needs the Family Id of its case",
            )


_RELATION_HINT = "Relation is proband (or empty), mother, father or sibling, in lower case"


def _invalid_relation(relation: str) -> tuple[str, str | None]:
    """One message for a row whose Relation the official CLI refuses, and its hint.

    The official CLI gives a ``Proband`` row two messages (``proband is required`` and
    ``Proband is not valid``); the row gets one here, saying what is wrong with it.
    """
    text = shortened(relation)
    if relation.lower() in RELATIONS:
        return (f"Relation {text} is not valid: relations are lower case: "
                + ", ".join(RELATIONS)), None
    if relation.strip().lower() in (*RELATIONS, ""):
        return f"Relation {quoted(relation)} is not valid: remove the spaces around it", None
    return f"Relation {text} is not valid", _RELATION_HINT


async def _stage_relations(view: View, lookups: Lookups, report: Report) -> None:
    """Official stage 2; a row with an invalid relation gets that message only (the same
    rows are flagged as by the official CLI)."""
    relations = [row.cells.get("Relation") or "proband" for row in view.rows]  # View.relation
    counts = {name: relations.count(name) for name in ("proband", "mother", "father")}
    if counts["proband"] == 1 and counts["mother"] < 2 and counts["father"] < 2 \
            and all(relation in RELATIONS for relation in relations):
        return  # the usual family: nothing to report
    for row, relation in zip(view.rows, relations, strict=True):
        if relation not in RELATIONS:
            message, hint = _invalid_relation(relation)
            report.add(row, message, "Relation", hint)
            continue
        if counts["proband"] == 0:
            report.add(
                row,
                "Relation proband is required",
                "Relation",
                "each family needs exactly one proband row",
            )
        if relation in counts and counts[relation] > 1:
            report.add(row, f"Relation {relation} already exists in family", "Relation")


_BOOL_HINT = "true or false"
_INT_HINT = "a whole number"
_DATE_HINT = "YYYY-MM-DD or YYYY/MM/DD, a real calendar date"


def _required(value: str) -> bool:
    return bool(value)


def _whole_numbers(value: str) -> bool:
    return all(is_integer(item) for item in split_items(value))


def _short_notes(value: str) -> bool:
    # a JavaScript length is at most twice Python's: most notes need no count
    return len(value) <= _NOTES_LIMIT // 2 or js_length(value) <= _NOTES_LIMIT


#: The proband's value checks, in the official order: (column, rule, message, hint). An empty
#: cell passes every rule but Case Type's (required).
_PROBAND_CHECKS: tuple[tuple[str, Callable[[str], bool], str, str | None], ...] = (
    ("Execute Now", is_bool, 'Execute Now is not "true" or "false"', _BOOL_HINT),
    ("Case Type", _required, "Case Type is required", "e.g. Exome, Whole Genome"),
    ("Gene List Id", is_integer, "Gene List Id is not valid", _INT_HINT),
    ("Kit Id", is_integer, "Kit Id is not valid", _INT_HINT),
    ("Intersect Bed Id", is_integer, "Intersect Bed Id is not valid", _INT_HINT),
    ("Boost Genes", is_bool, 'Boost Genes is not "true" or "false"', _BOOL_HINT),
    ("Due Date", is_date, "Due Date is not valid", _DATE_HINT),
    ("Label Id", _whole_numbers, "", "a ;-separated list of whole numbers"),
    ("Opt In", is_bool, 'Opt In is not "true" or "false"', _BOOL_HINT),
    ("Date Of Birth", is_date, "Date Of Birth is not valid", _DATE_HINT),
    ("Clinical Notes", _short_notes, "Clinical Notes should be less than 4000 characters", None),
)


def _check_proband_fields(row: Row, report: Report) -> None:
    get = row.cells.get  # one look-up per column: this runs for every family
    for column, rule, message, hint in _PROBAND_CHECKS:
        value = get(column, "")
        if (value or rule is _required) and not rule(value):
            if rule is _whole_numbers:  # the message names the items that are not
                labels = [item for item in split_items(value) if not is_integer(item)]
                message = f"{plural(labels, 'Label Id', 'Label Ids')} not valid"
            report.add(row, message, column, hint)


async def _check_member_fields(view: View, row: Row, lookups: Lookups, report: Report) -> None:
    get = row.cells.get
    before = len(report.problems)
    files = get("Files Names", "")
    name = get("BioSample Name", "")
    if files and not name:
        report.add(row, "BioSample Name is required if Files Names present", "BioSample Name")
    elif _SPACE.search(name):
        report.add(row, f"BioSample Name {name} is not valid - contains space", "BioSample Name")
    elif files == "existing" and await lookups.resolver.find_sample(name) is None:
        report.add(
            row,
            f"BioSample Name {name} is not an existing sample",
            "BioSample Name",
            "existing reuses a FASTQ sample already in Emedgene, found by exact name",
        )
    if get(view.sex_column, "").lower() not in GENDERS:
        report.add(
            row,
            f"{view.sex_column} is not valid",
            view.sex_column,
            "M, F, U, Male, Female or Unknown",
        )
    _check_phenotypes(row, report)
    if files.lower() == "auto" and not get("Default Project", ""):
        report.add(row, "Default Project is required if Files Names is auto", "Default Project")
    if files and files != "existing":
        await _check_storage(row, lookups, report)
    if len(report.problems) == before and files == "auto":
        found = await lookups.auto_files(
            int(get("Storage Provider Id", "")), get("Default Project", ""), name
        )
        if found is None:
            report.add(
                row,
                _AUTO_NOT_FOUND,
                "Files Names",
                "no BaseSpace biosample with that name in that project",
            )


def _check_phenotypes(row: Row, report: Report) -> None:
    get = row.cells.get
    ids = split_items(get("Phenotypes Id", ""))
    names = split_items(get("Phenotypes", ""))
    if not ids and not names:
        report.add(
            row,
            "One of Phenotypes or Phenotypes Id is required",
            "Phenotypes",
            "list phenotypes, HPO ids, or write unaffected",
        )
    if len(ids) > _PHENOTYPE_LIMIT:
        report.add(row, "Phenotypes Ids are more than 100", "Phenotypes Id")
    if len(names) > _PHENOTYPE_LIMIT:
        report.add(row, "Phenotypes are more than 100", "Phenotypes")
    bad = [item for item in ids if not item.startswith("HP:")]
    if bad:
        report.add(
            row,
            f"{plural(bad, 'Phenotypes Id', 'Phenotypes Ids')} not valid",
            "Phenotypes Id",
            "HPO ids look like HP:0001250",
        )


async def _check_storage(row: Row, lookups: Lookups, report: Report) -> None:
    storage = row.get("Storage Provider Id")
    if not storage:
        report.add(
            row,
            "Storage Provider Id is required",
            "Storage Provider Id",
            "the id of the storage that holds the files",
        )
    elif not is_integer(storage):
        report.add(row, "Storage Provider Id is not valid", "Storage Provider Id", _INT_HINT)
    elif row.get("Files Names") == "auto":
        try:
            details = await lookups.storage(int(storage))
        except ResolveError as exc:
            report.add(row, f"Storage Provider Id-{exc.message}", "Storage Provider Id")
            return
        if details.get("scheme") != "basespace":
            report.add(
                row,
                "Storage Provider Id should be basespace if Files Names is auto",
                "Storage Provider Id",
            )


async def _stage_fields(view: View, lookups: Lookups, report: Report) -> None:
    for row in view.rows:
        if row is view.proband:
            _check_proband_fields(row, report)
        await _check_member_fields(view, row, lookups, report)




_FAMILY_COLUMNS = (
    "Case Type",
    "Execute Now",
    "Gene List Id",
    "Kit Id",
    "Intersect Bed Id",
    "Boost Genes",
    "Due Date",
    "Label Id",
    "Opt In",
    "Selected Preset",
    "Clinical Notes",
)


def _extra_warnings(view: View, report: Report) -> None:
    """What a careful user wants to know that the official CLI does not say."""
    proband = view.proband
    for row in view.rows:
        ids, names = row.get("Phenotypes Id"), row.get("Phenotypes")
        if ids and names and split_items(ids) and split_items(names) \
                and names.lower() != "unaffected":
            report.add(
                row,
                "Phenotypes is ignored because Phenotypes Id is set",
                "Phenotypes",
                severity="warning",
            )
        if proband is None or row is proband:
            continue
        cells, family_cells = row.cells, proband.cells  # many cells: plain look-ups
        for column in _FAMILY_COLUMNS:
            value = cells.get(column)
            if value and value != family_cells.get(column, ""):
                report.add(
                    row,
                    "differs from the proband row and is ignored (case-level"
                    " columns are read from the proband row only)",
                    column,
                    severity="warning",
                )
