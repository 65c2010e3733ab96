"""Validation: every family checked as the official CLI v36 checks it, and the checks across
families that it lacks.

Per family (BEHAVIOUR §5, stages 1-5, in order): Family Id, relations, field values, file
types, visualization files. A stage that fails stops the family; later stages add nothing.
Messages are the official texts; each problem names row, column and value, with a hint.
Across families (manifest-wide, no look-ups): split Family Id blocks, shared samples, action
columns, birth dates in the future. ``View`` is the family as the checks and the builder see
it; ``Report`` collects the problems the stages add.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable, Sequence

from batch.errors import ResolveError
from batch.manifest import Family, Manifest, Problem, Row, split_items
from batch.manifest.model import ACTION_CELLS
from batch.payload.files import sample_type_of
from batch.payload.lookups import Lookups
from batch.payload.resolve import Resolver
from batch.payload.rules import (
    BAM_SUFFIXES,
    FAMILY_COLUMNS,
    GENDERS,
    NOTES_LIMIT,
    PHENOTYPE_LIMIT,
    RELATIONS,
    STATUSES,
    VIZ_SUFFIXES,
    file_type,
    is_bool,
    is_date,
    is_id,
    js_length,
    last_segment,
    parse_date,
)
from batch.payload.screen import rows_to_check_across
from batch.text import clip, quoted


class View:
    """The family as the stages see it: relation per row, sex column, proband."""

    def __init__(self, family: Family) -> None:
        self.family = family
        self.rows = family.rows
        self.proband = family.proband
        has_sex = "Sex" in family.columns or (
            not family.columns and any("Sex" in row.cells for row in family.rows)
        )
        self.sex_column = "Sex" if has_sex else "Gender"

    @staticmethod
    def relation(row: Row) -> str:
        """The row's relation; an empty cell is the proband (the official default)."""
        return row.get("Relation") or "proband"



class Report:
    """The problems found in one family; ``failed`` once any of them is an error."""

    def __init__(self, family: Family, file: str) -> None:
        self.family = family
        self.file = file
        self.problems: list[Problem] = []
        self.errors = 0

    def add(
        self,
        row: Row,
        message: str,
        column: str | None = None,
        hint: str | None = None,
        *,
        severity: str = "error",
    ) -> None:
        """Add a problem on *row* (its value read from *column*)."""
        value = row.cells.get(column) if column is not None else None
        self.errors += severity != "warning"
        self.problems.append(Problem(
            file=self.file, row=row.number, family=self.family.family_id, column=column,
            value=value, message=message, hint=hint,
            severity="warning" if severity == "warning" else "error",
        ))

    @property
    def failed(self) -> bool:
        """Whether any error (not a warning) was added."""
        return self.errors > 0


def listed(items: Sequence[str], one: str, many: str) -> str:
    """``one: a`` or ``many: a;b`` (the official CLI's wording for lists of bad items)."""
    return f"{one if len(items) == 1 else many}: {';'.join(items)}"


_SPACE = re.compile(r"\s")
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
    text = clip(relation)
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
_INT_HINT = "a whole number (at most 18 digits)"
_DATE_HINT = "YYYY-MM-DD or YYYY/MM/DD, a real calendar date"


def _required(value: str) -> bool:
    return bool(value)


def _whole_numbers(value: str) -> bool:
    return all(is_id(item) for item in split_items(value))


def _short_notes(value: str) -> bool:
    # a JavaScript length is at most twice Python's: most notes need no count
    return len(value) <= NOTES_LIMIT // 2 or js_length(value) <= NOTES_LIMIT


#: The proband's value checks, in the official order: (column, rule, message, hint). An empty
#: cell passes every rule but Case Type's (required).
_PROBAND_CHECKS: tuple[tuple[str, Callable[[str], bool], str, str | None], ...] = (
    ("Execute Now", is_bool, 'Execute Now is not "true" or "false"', _BOOL_HINT),
    ("Case Type", _required, "Case Type is required", "e.g. Exome, Whole Genome"),
    ("Gene List Id", is_id, "Gene List Id is not valid", _INT_HINT),
    ("Kit Id", is_id, "Kit Id is not valid", _INT_HINT),
    ("Intersect Bed Id", is_id, "Intersect Bed Id is not valid", _INT_HINT),
    ("Boost Genes", is_bool, 'Boost Genes is not "true" or "false"', _BOOL_HINT),
    ("Due Date", is_date, "Due Date is not valid", _DATE_HINT),
    ("Label Id", _whole_numbers, "", "a ;-separated list of whole numbers (at most 18 digits)"),
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
                labels = [item for item in split_items(value) if not is_id(item)]
                message = f"{listed(labels, 'Label Id', 'Label Ids')} not valid"
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
    if len(ids) > PHENOTYPE_LIMIT:
        report.add(row, "Phenotypes Ids are more than 100", "Phenotypes Id")
    if len(names) > PHENOTYPE_LIMIT:
        report.add(row, "Phenotypes are more than 100", "Phenotypes")
    bad = [item for item in ids if not item.startswith("HP:")]
    if bad:
        report.add(
            row,
            f"{listed(bad, 'Phenotypes Id', 'Phenotypes Ids')} not valid",
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
    elif not is_id(storage):
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
        for column in FAMILY_COLUMNS:
            value = cells.get(column)
            if value and value != family_cells.get(column, ""):
                report.add(
                    row,
                    "differs from the proband row and is ignored (case-level"
                    " columns are read from the proband row only)",
                    column,
                    severity="warning",
                )


_EMAIL = re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+$")
_CUSTOM_STATUS = re.compile(r"^custom_status_\d+$")
_GENE_LIST_ITEM = re.compile(r"^([0-9]+)\s*:\s*\S.*$")


def check_manifest_wide(manifest: Manifest, *, today: dt.date | None = None) -> list[Problem]:
    """Checks across families that the official CLI lacks.

    * ``Family Id`` rows split into blocks (warning: legal, but often a copy-paste slip);
    * a BioSample Name in two families (warning: the official CLI accepts it, and a sample
      may be analysed in several cases);
    * action columns: ``Assign To`` e-mails, ``Set Status`` values, ``Preset Gene Lists`` items
      and ``Preset Group`` required with gene lists (errors);
    * a birth date in the future (warning).

    Rows with an empty ``Family Id`` are reported by ``check_family`` (official stage 1).
    """
    file = manifest.source
    today = today or dt.date.today()
    problems = _split_blocks(manifest, file)
    key = "Family Id" if "Family Id" in manifest.columns else "Case Id"
    owners: dict[str, str] = {}
    wanted = (key, "BioSample Name", "Date Of Birth", *ACTION_CELLS)
    actions = any(column in manifest.columns for column in ACTION_CELLS)
    today_text = today.isoformat()
    screened = rows_to_check_across(manifest, wanted, today_text)
    for number, cells in manifest.cell_rows(wanted) if screened is None else screened:
        family_id, sample, born_text = cells[:3]
        if sample and owners.setdefault(sample, family_id) != family_id:
            problems += _shared_sample(number, family_id, sample, owners, file)
        if actions:
            row = Row(number=number, cells=dict(zip(ACTION_CELLS, cells[3:], strict=True)))
            problems += _action_row(row, family_id, file)
        born = parse_date(born_text) if born_text and not _past(born_text, today_text) else None
        if born is not None and born > today:
            problems.append(Problem(
                file=file, row=number, family=family_id, column="Date Of Birth",
                value=born_text, message="the birth date is in the future", severity="warning",
            ))
    return problems


def _past(text: str, today: str) -> bool:
    """A ``YYYY-MM-DD`` cell on or before *today* (ISO text), told without parsing it: such
    text sorts as its date does (a cell that is not a date then parses as none anyway)."""
    return len(text) == 10 and text[4] == text[7] == "-" and text <= today


def _split_blocks(manifest: Manifest, file: str) -> list[Problem]:
    problems: list[Problem] = []
    for family_id in manifest.family_ids:
        positions = manifest.row_positions(family_id)
        if positions[-1] - positions[0] + 1 == len(positions):
            continue
        gap = next(b for a, b in itertools.pairwise(positions) if b != a + 1)
        problems.append(Problem(
            file=file, row=manifest.row_number(gap), family=family_id, column="Family Id",
            value=family_id,
            message="the family's rows are not next to each other (rows of one family are"
                    " grouped wherever they are)",
            hint="check that two families do not share an id by mistake", severity="warning",
        ))
    return problems


def _shared_sample(number: int, family_id: str, name: str, owners: dict[str, str],
                   file: str) -> list[Problem]:
    """A BioSample Name in two families: accepted, as the official CLI accepts it (one sample
    analysed as an exome and as a panel), with a warning in case it is a copy-paste slip."""
    if not name:
        return []
    owner = owners.setdefault(name, family_id)
    if owner == family_id:
        return []
    return [Problem(
        file=file, row=number, family=family_id, column="BioSample Name", value=name,
        message=f"BioSample Name {name} is also used in family {owner}",
        hint="fine for one sample analysed twice (e.g. exome and panel); check it is not a slip",
        severity="warning",
    )]


def _action_row(row: Row, family_id: str, file: str) -> list[Problem]:
    found: list[Problem] = []

    def bad(column: str, message: str, hint: str) -> None:
        found.append(Problem(file=file, row=row.number, family=family_id, column=column,
                             value=row.get(column), message=message, hint=hint))

    emails = [item for item in split_items(row.get("Assign To")) if not _EMAIL.match(item)]
    if emails:
        bad(
            "Assign To",
            f"not an e-mail address: {';'.join(emails)}",
            "a ;-separated list of user e-mails",
        )
    status = row.get("Set Status")
    if status and status not in STATUSES and not _CUSTOM_STATUS.match(status):
        bad("Set Status", "not a case status", "delivered, finalized, trash or custom_status_<n>")
    lists = row.get("Preset Gene Lists")
    wrong = [item for item in split_items(lists) if not _gene_list_item(item)]
    if wrong:
        bad(
            "Preset Gene Lists",
            f"not <id>:<name>: {';'.join(wrong)}",
            "a ;-separated list such as 12:Epilepsy;40:Cardio",
        )
    if lists and not row.get("Preset Group"):
        bad(
            "Preset Group",
            "Preset Group is required with Preset Gene Lists",
            "the preset group the gene lists belong to",
        )
    return found


def _gene_list_item(item: str) -> bool:
    """``<id>:<name>``, the id one the client can send."""
    found = _GENE_LIST_ITEM.match(item)
    return found is not None and is_id(found.group(1))


async def _row_type(row: Row, lookups: Lookups, report: Report | None) -> str | None:
    """Type of a row's files (stage 4); reports problems when *report* is given."""
    get = row.cells.get
    files = get("Files Names", "")
    if files in ("auto", "existing"):
        return "fastq"
    storage = get("Storage Provider Id", "")
    items = split_items(files)
    # asked even when every name has a suffix: this first look-up is what finds a server
    # that cannot be reached before anything is sent
    basespace = is_id(storage) and await lookups.is_basespace(int(storage))
    types: set[str] = set()
    invalid = False
    for item in items:
        name = item
        if basespace and "." not in last_segment(item):
            try:
                name = await lookups.alias(int(storage), item)
            except ResolveError as exc:
                if report is not None:
                    report.add(row, f"Files Names-{exc.message}", "Files Names")
                return None
        kind = file_type(name)
        invalid = invalid or kind is None
        if kind is not None:
            types.add(kind)
    if report is not None and invalid:
        report.add(
            row,
            "Sample type in Files Names is not valid",
            "Files Names",
            "data files end in .fastq.gz, .fq.gz, .bam, .cram, .vcf, .vcf.gz or .gvcf",
        )
    elif report is not None and len(types) > 1:
        report.add(
            row,
            "Sample type in Files Names is not unique",
            "Files Names",
            "one member's files are all FASTQ or all VCF",
        )
    return types.pop() if len(types) == 1 and not invalid else None


async def stage_file_types(view: View, lookups: Lookups, report: Report) -> None:
    """Stage 4: every member's files are of a known type, one type per family."""
    kinds: set[str] = set()
    for row in view.rows:
        if row.get("Files Names"):
            kind = await _row_type(row, lookups, report)
            if kind is not None:
                kinds.add(kind)
            continue
        sample_type = row.get("Sample Type")
        if sample_type and sample_type.lower() not in ("fastq", "vcf"):
            report.add(row, "Sample Type is not valid", "Sample Type", "FASTQ or VCF")
        elif not sample_type and row is view.proband:
            report.add(row, "Files Names or Sample Type is required for proband", "Files Names")
    if not report.failed and len(kinds) > 1:
        for row in view.rows:
            report.add(
                row,
                "Sample Type is not unique per Family Id",
                "Files Names",
                "a case is all FASTQ or all VCF",
            )


async def _viz_items(row: Row, lookups: Lookups) -> list[tuple[str, str]]:
    """``(path, name used for the suffix)`` of a row's visualization files."""
    storage = row.get("Storage Provider Id")
    basespace = is_id(storage) and await lookups.is_basespace(int(storage))
    items: list[tuple[str, str]] = []
    for item in split_items(row.get("Visualization Files")):
        # Like Files Names: only an id (no dot in the last segment) needs its human name.
        needs_alias = basespace and "." not in last_segment(item)
        name = await lookups.alias(int(storage), item) if needs_alias else item
        items.append((item, name))
    return items


async def stage_visualization(view: View, lookups: Lookups, report: Report) -> None:
    """Stage 5 (VCF cases): known visualization suffixes, at most one BAM/CRAM."""
    if await sample_type_of(view.proband, lookups) == "fastq":
        return
    for row in view.rows:
        if not row.get("Files Names") or not row.get("Visualization Files"):
            continue
        try:
            items = await _viz_items(row, lookups)
        except ResolveError as exc:
            report.add(row, f"Visualization Files-{exc.message}", "Visualization Files")
            continue
        bad = [path for path, name in items if not name.endswith(BAM_SUFFIXES + VIZ_SUFFIXES)]
        bams = [path for path, name in items if name.endswith(BAM_SUFFIXES)]
        if bad:
            report.add(
                row,
                f"{listed(bad, 'Visualization file', 'Visualization files')} not valid",
                "Visualization Files",
                "one .bam/.cram, and .tn.bw, .baf.bw, .roh.bed, .target.counts.bw, .metrics.tar.gz",
            )
        if len(bams) > 1:
            report.add(
                row,
                f"Visualization Files bam files: {';'.join(bams)} are more than 1",
                "Visualization Files",
                "at most one BAM or CRAM per member",
            )
