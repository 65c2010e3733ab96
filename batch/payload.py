"""Family validation and the ``POST /api/cases/v2/cases`` payload, as the official CLI v36 does it.

The stages and messages follow BEHAVIOUR.md §5; the payload mapping follows §3. Look-ups that
need the API (storage schemes, BaseSpace listings, existing samples) go through a ``Resolver``
that the client implements and tests fake.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from batch.manifest import KNOWN_COLUMNS, Family, Manifest, Problem, Row, split_items

FASTQ_SUFFIXES = (".fastq.gz", ".fq.gz", ".bam", ".cram")
VCF_SUFFIXES = (".vcf.gz", ".vcf", "gvcf.gz", "gvcf")
BAM_SUFFIXES = (".bam", ".cram")
VIZ_SUFFIXES = (".tn.bw", ".baf.bw", ".roh.bed", ".target.counts.bw", ".metrics.tar.gz")
RELATIONS = ("proband", "mother", "father", "sibling")
GENDERS = {
    "m": "Male",
    "male": "Male",
    "f": "Female",
    "female": "Female",
    "u": "Unknown",
    "unknown": "Unknown",
    "": "Unknown",
}
STATUSES = ("delivered", "finalized", "trash")
_T = TypeVar("_T")
_SPACE = re.compile(r"\s")
# JavaScript's \d is ASCII only; Python's would also take other scripts' digits.
_DATE = re.compile(r"^([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})$")
_EMAIL = re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+$")
_CUSTOM_STATUS = re.compile(r"^custom_status_\d+$")
_GENE_LIST_ITEM = re.compile(r"^\d+\s*:\s*\S.*$")
_NOTES_LIMIT = 4000
_PHENOTYPE_LIMIT = 100
_AUTO_NOT_FOUND = (
    "Either of Storage Provider Id; Default Project or BioSample Name is not valid"
    " since no sample files found"
)


class ResolveError(Exception):
    """A look-up failed; ``message`` is the server's message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BuildError(Exception):
    """The payload cannot be built; the message goes to the proband row (BEHAVIOUR §5.6)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Resolver(Protocol):
    """The API look-ups the payload needs."""

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """Storage details (``{"id", "scheme", ...}``); ``ResolveError`` when unknown."""
        ...

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """Every entry (all pages) of a BaseSpace directory: ``[{"name", "alias"}]``."""
        ...

    async def find_sample(self, name: str) -> Mapping[str, Any] | None:
        """First exact hit of ``/api/sample`` (FASTQ samples), or None."""
        ...


class CachedResolver:
    """Wraps a resolver with caches shared by every family of a run.

    Storage details and sample hits never change during a run, so each is asked once; BaseSpace
    listings are kept up to ``listing_limit`` directories (then the cache starts again).
    Failures are cached too: an unknown storage id costs one request, not one per family.
    """

    def __init__(self, resolver: Resolver, *, listing_limit: int = 4096) -> None:
        self._resolver = resolver
        self._limit = listing_limit
        self._storages: dict[int, Mapping[str, Any] | ResolveError] = {}
        self._listings: dict[tuple[int, str], Sequence[Mapping[str, str]] | ResolveError] = {}
        self._samples: dict[str, Mapping[str, Any] | None] = {}

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        """Storage details, asked once per id."""
        if storage_id not in self._storages:
            try:
                self._storages[storage_id] = await self._resolver.storage(storage_id)
            except ResolveError as exc:
                self._storages[storage_id] = exc
        return _answer(self._storages[storage_id])

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        """A BaseSpace directory, asked once while the cache holds it."""
        key = (storage_id, path)  # exact: a server message quotes the path as sent
        if key not in self._listings:
            if len(self._listings) >= self._limit:
                self._listings.clear()
            try:
                self._listings[key] = await self._resolver.list_dir(storage_id, path)
            except ResolveError as exc:
                self._listings[key] = exc
        return _answer(self._listings[key])

    async def find_sample(self, name: str) -> Mapping[str, Any] | None:
        """An existing sample, asked once per name."""
        if name not in self._samples:
            self._samples[name] = await self._resolver.find_sample(name)
        return self._samples[name]


def _answer(found: _T | ResolveError) -> _T:
    if isinstance(found, ResolveError):
        raise ResolveError(found.message)
    return found


# --------------------------------------------------------------------------- value rules


def is_integer(cell: str) -> bool:
    """Official integer rule: digits only, after trimming."""
    value = cell.strip()
    return value.isascii() and value.isdigit()  # ^[0-9]+$, as JavaScript's ^\d+$ means


def is_bool(cell: str) -> bool:
    """``true``/``false`` in any case."""
    return cell.strip().lower() in ("true", "false")


def is_date(cell: str) -> bool:
    """The official date rule: ``YYYY-M-D`` with ``-`` or ``/``, calendar-checked."""
    return _date_parts(cell) is not None


def parse_date(cell: str) -> dt.date | None:
    """The date of a cell that passes :func:`is_date`; None otherwise, and for year 0, which
    the official rule accepts but no Python date can hold (it is never in the future)."""
    parts = _date_parts(cell)
    if parts is None or parts[0] < 1:
        return None
    return dt.date(*parts)


def _date_parts(cell: str) -> tuple[int, int, int] | None:
    match = _DATE.match(cell.strip())
    if match is None:
        return None
    year, month, day = map(int, match.groups())
    if not 1 <= month <= 12 or not 1 <= day <= _month_days(year, month):
        return None
    return year, month, day


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if calendar.isleap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def js_length(text: str) -> int:
    """Length as JavaScript counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def file_type(name: str) -> str | None:
    """``fastq`` or ``vcf`` from a file name's suffix, None when not recognised."""
    if name.endswith(FASTQ_SUFFIXES):
        return "fastq"
    if name.endswith(VCF_SUFFIXES):
        return "vcf"
    return None


def _plural(items: Sequence[str], one: str, many: str) -> str:
    return f"{one if len(items) == 1 else many}: {';'.join(items)}"


def _last_segment(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _parent_dir(path: str) -> str:
    return path.rsplit("/", 1)[0].strip("/") if "/" in path else ""


# --------------------------------------------------------------------------- look-ups


@dataclass
class _Lookups:
    """Per-family memo of resolver answers (the client caches across families)."""

    resolver: Resolver
    storages: dict[int, Mapping[str, Any] | ResolveError] = field(default_factory=dict)
    listings: dict[tuple[int, str], Sequence[Mapping[str, str]]] = field(default_factory=dict)

    async def storage(self, storage_id: int) -> Mapping[str, Any]:
        if storage_id not in self.storages:
            try:
                self.storages[storage_id] = await self.resolver.storage(storage_id)
            except ResolveError as exc:
                self.storages[storage_id] = exc
        found = self.storages[storage_id]
        if isinstance(found, ResolveError):
            raise found
        return found

    async def is_basespace(self, storage_id: int) -> bool:
        try:
            return (await self.storage(storage_id)).get("scheme") == "basespace"
        except ResolveError:
            return False

    async def list_dir(self, storage_id: int, path: str) -> Sequence[Mapping[str, str]]:
        key = (storage_id, path)
        if key not in self.listings:
            self.listings[key] = await self.resolver.list_dir(storage_id, path)
        return self.listings[key]

    async def alias(self, storage_id: int, path: str) -> str:
        """Human name of a BaseSpace file id path; ResolveError when it is not there."""
        wanted = _last_segment(path)
        for entry in await self.list_dir(storage_id, _parent_dir(path)):
            if entry.get("name") == wanted:
                return str(entry.get("alias", ""))
        raise ResolveError(f"{path} is not available")

    async def auto_files(
        self, storage_id: int, project: str, biosample: str
    ) -> list[tuple[str, str]] | None:
        """``(id path, alias)`` of every file of a biosample; None when it is not found."""
        try:
            p = _find(await self.list_dir(storage_id, "/projects"), project)
            if p is None:
                return None
            b = _find(await self.list_dir(storage_id, f"/projects/{p}/biosamples"), biosample)
            if b is None:
                return None
            base = f"/projects/{p}/biosamples/{b}/datasets"
            files: list[tuple[str, str]] = []
            for dataset in await self.list_dir(storage_id, f"{base}/"):
                folder = f"{base}/{dataset['name']}/sequenced files"
                for entry in await self.list_dir(storage_id, f"{folder}/"):
                    files.append((f"{folder}/{entry['name']}", str(entry.get("alias", ""))))
            return files
        except ResolveError:
            return None


def _find(entries: Sequence[Mapping[str, str]], alias: str) -> str | None:
    for entry in entries:
        if entry.get("alias") == alias:
            return str(entry["name"])
    return None


# --------------------------------------------------------------------------- family view


class _View:
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
        return row.get("Relation") or "proband"


# --------------------------------------------------------------------------- checks


class _Report:
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
        value = row.cells.get(column) if column is not None else None
        self.errors += severity != "warning"
        self.problems.append(
            Problem(
                self.file,
                row.number,
                self.family.family_id,
                column,
                value,
                message,
                hint,
                "warning" if severity == "warning" else "error",
            )
        )

    @property
    def failed(self) -> bool:
        return self.errors > 0


async def check_family(family: Family, resolver: Resolver, *, file: str) -> list[Problem]:
    """Every client-side stage of BEHAVIOUR §5 (1-5) with its look-ups; ``[]`` when OK.

    A family whose proband already has a ``Case Id`` is not checked (it is not created).
    """
    if family.is_update_only:
        return []
    report = _Report(family, file)
    view = _View(family)
    lookups = _Lookups(resolver)
    stages = (
        _stage_family_id,
        _stage_relations,
        _stage_fields,
        _stage_file_types,
        _stage_visualization,
    )
    for stage in stages:
        await stage(view, lookups, report)
        if report.failed:
            break
    if not report.failed:
        _extra_warnings(view, report)
    return report.problems


async def _stage_family_id(view: _View, lookups: _Lookups, report: _Report) -> None:
    if view.family.family_id == "":
        for row in view.rows:
            report.add(
                row,
                "Family Id is required",
                "Family Id",
                "every row needs the Family Id of its case",
            )


async def _stage_relations(view: _View, lookups: _Lookups, report: _Report) -> None:
    relations = [view.relation(row) for row in view.rows]
    counts = {name: relations.count(name) for name in ("proband", "mother", "father")}
    hint = "Relation is proband (or empty), mother, father or sibling, in lower case"
    for row, relation in zip(view.rows, relations, strict=True):
        if counts["proband"] == 0:
            report.add(
                row,
                "Relation proband is required",
                "Relation",
                "each family needs exactly one proband row",
            )
        if relation in counts and counts[relation] > 1:
            report.add(row, f"Relation {relation} already exists in family", "Relation")
        if relation not in RELATIONS:
            report.add(row, f"Relation {relation} is not valid", "Relation", hint)


_BOOL_HINT = "true or false"
_INT_HINT = "a whole number"
_DATE_HINT = "YYYY-MM-DD or YYYY/MM/DD, a real calendar date"


def _check_proband_fields(row: Row, report: _Report) -> None:
    def bad_bool(column: str) -> None:
        if row.get(column) and not is_bool(row.get(column)):
            report.add(row, f'{column} is not "true" or "false"', column, _BOOL_HINT)

    def bad_int(column: str) -> None:
        if row.get(column) and not is_integer(row.get(column)):
            report.add(row, f"{column} is not valid", column, _INT_HINT)

    def bad_date(column: str) -> None:
        if row.get(column) and not is_date(row.get(column)):
            report.add(row, f"{column} is not valid", column, _DATE_HINT)

    bad_bool("Execute Now")
    if not row.get("Case Type"):
        report.add(row, "Case Type is required", "Case Type", "e.g. Exome, Whole Genome")
    for column in ("Gene List Id", "Kit Id", "Intersect Bed Id"):
        bad_int(column)
    bad_bool("Boost Genes")
    bad_date("Due Date")
    labels = [item for item in split_items(row.get("Label Id")) if not is_integer(item)]
    if labels:
        report.add(
            row,
            f"{_plural(labels, 'Label Id', 'Label Ids')} not valid",
            "Label Id",
            "a ;-separated list of whole numbers",
        )
    bad_bool("Opt In")
    bad_date("Date Of Birth")
    if js_length(row.get("Clinical Notes")) > _NOTES_LIMIT:
        report.add(row, "Clinical Notes should be less than 4000 characters", "Clinical Notes")


async def _check_member_fields(view: _View, row: Row, lookups: _Lookups, report: _Report) -> None:
    before = len(report.problems)
    files = row.get("Files Names")
    name = row.get("BioSample Name")
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
    if row.get(view.sex_column).lower() not in GENDERS:
        report.add(
            row,
            f"{view.sex_column} is not valid",
            view.sex_column,
            "M, F, U, Male, Female or Unknown",
        )
    _check_phenotypes(row, report)
    if files.lower() == "auto" and not row.get("Default Project"):
        report.add(row, "Default Project is required if Files Names is auto", "Default Project")
    if files and files != "existing":
        await _check_storage(row, lookups, report)
    if len(report.problems) == before and files == "auto":
        found = await lookups.auto_files(
            int(row.get("Storage Provider Id")), row.get("Default Project"), name
        )
        if found is None:
            report.add(
                row,
                _AUTO_NOT_FOUND,
                "Files Names",
                "no BaseSpace biosample with that name in that project",
            )


def _check_phenotypes(row: Row, report: _Report) -> None:
    ids = split_items(row.get("Phenotypes Id"))
    names = split_items(row.get("Phenotypes"))
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
            f"{_plural(bad, 'Phenotypes Id', 'Phenotypes Ids')} not valid",
            "Phenotypes Id",
            "HPO ids look like HP:0001250",
        )


async def _check_storage(row: Row, lookups: _Lookups, report: _Report) -> None:
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


async def _stage_fields(view: _View, lookups: _Lookups, report: _Report) -> None:
    for row in view.rows:
        if row is view.proband:
            _check_proband_fields(row, report)
        await _check_member_fields(view, row, lookups, report)


async def _row_type(row: Row, lookups: _Lookups, report: _Report | None) -> str | None:
    """Type of a row's files (stage 4); reports problems when *report* is given."""
    files = row.get("Files Names")
    if files in ("auto", "existing"):
        return "fastq"
    storage = row.get("Storage Provider Id")
    basespace = is_integer(storage) and await lookups.is_basespace(int(storage))
    types: set[str] = set()
    invalid = False
    for item in split_items(files):
        name = item
        if basespace and "." not in _last_segment(item):
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


async def _stage_file_types(view: _View, lookups: _Lookups, report: _Report) -> None:
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


async def case_sample_type(family: Family, resolver: Resolver) -> str:
    """The case ``sample_type`` from the proband's first file (BEHAVIOUR §3.4)."""
    return await _sample_type(_View(family), _Lookups(resolver))


async def _sample_type(view: _View, lookups: _Lookups) -> str:
    proband = view.proband
    if proband is None:
        return "fastq"
    items = split_items(proband.get("Files Names"))
    if not items:
        return proband.get("Sample Type").lower() or "fastq"
    first = items[0]
    if first in ("auto", "existing"):
        return "fastq"
    storage = proband.get("Storage Provider Id")
    name = first
    if (
        is_integer(storage)
        and "." not in _last_segment(first)
        and await lookups.is_basespace(int(storage))
    ):
        try:
            name = await lookups.alias(int(storage), first)
        except ResolveError:
            return "fastq"
    return file_type(name) or "fastq"


async def _viz_items(row: Row, lookups: _Lookups) -> list[tuple[str, str]]:
    """``(path, name used for the suffix)`` of a row's visualization files."""
    storage = row.get("Storage Provider Id")
    basespace = is_integer(storage) and await lookups.is_basespace(int(storage))
    items: list[tuple[str, str]] = []
    for item in split_items(row.get("Visualization Files")):
        # Like Files Names: only an id (no dot in the last segment) needs its human name.
        needs_alias = basespace and "." not in _last_segment(item)
        name = await lookups.alias(int(storage), item) if needs_alias else item
        items.append((item, name))
    return items


async def _stage_visualization(view: _View, lookups: _Lookups, report: _Report) -> None:
    if await _sample_type(view, lookups) == "fastq":
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
                f"{_plural(bad, 'Visualization file', 'Visualization files')} not valid",
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


def _extra_warnings(view: _View, report: _Report) -> None:
    """What a careful user wants to know that the official CLI does not say."""
    proband = view.proband
    for row in view.rows:
        if (
            split_items(row.get("Phenotypes Id"))
            and split_items(row.get("Phenotypes"))
            and (row.get("Phenotypes").lower() != "unaffected")
        ):
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


# --------------------------------------------------------------------------- payload


def _phenotypes(row: Row) -> tuple[str | None, list[str]]:
    """``("id" | "name" | None, values)`` of a member's phenotypes."""
    ids = split_items(row.get("Phenotypes Id"))
    if ids:
        return "id", [item.replace("HP:", "phenotypes/EMG_PHENOTYPE_", 1) for item in ids]
    if row.get("Phenotypes").strip().lower() == "unaffected":
        return None, []
    return "name", split_items(row.get("Phenotypes"))


def _patient(
    view: _View, row: Row, key: str, relationship: str, proband_terms: tuple[str | None, set[str]]
) -> dict[str, Any]:
    has_files = bool(row.get("Files Names"))
    name = row.get("BioSample Name")
    kind, values = _phenotypes(row)
    patient: dict[str, Any] = {
        "id": key,
        "fastq_sample": name if has_files else "",
        "pending_sample_name": "" if has_files else name,
        "gender": GENDERS.get(row.get(view.sex_column).lower(), "Unknown"),
        "relationship": relationship,
    }
    if row is view.proband:
        patient["healthy"] = not values
        patient["phenotypes"] = [{kind or "name": value} for value in values]
    else:
        related = [kind == proband_terms[0] and value in proband_terms[1] for value in values]
        patient["healthy"] = not any(related)
        patient["phenotypes"] = [
            {kind or "name": value, "related": flag}
            for value, flag in zip(values, related, strict=True)
        ]
    if row.get("Date Of Birth"):
        patient["date_of_birth"] = row.get("Date Of Birth")
    return patient


def _patients(view: _View) -> tuple[dict[str, Any], list[Row]]:
    """``patients`` and the member rows in payload order."""
    proband = view.proband
    assert proband is not None
    kind, values = _phenotypes(proband)
    terms = (kind, set(values))
    mother = next((r for r in view.rows if view.relation(r) == "mother"), None)
    father = next((r for r in view.rows if view.relation(r) == "father"), None)
    siblings = [r for r in view.rows if view.relation(r) == "sibling"]
    parents = {"mother": "mother"} if mother else {}
    if father:
        parents["father"] = "father"
    patients: dict[str, Any] = {
        "proband": {**_patient(view, proband, "proband", "Test Subject", terms), **parents}
    }
    if mother:
        patients["mother"] = _patient(view, mother, "mother", "Mother", terms)
    if father:
        patients["father"] = _patient(view, father, "father", "Father", terms)
    if siblings:
        patients["other"] = [
            {
                **_patient(view, row, "sibling" if i == 0 else f"sibling_{i}", "Sibling", terms),
                **parents,
            }
            for i, row in enumerate(siblings)
        ]
    members = [proband, *(r for r in (mother, father) if r), *siblings]
    return patients, members


async def _file_entry(
    row: Row, path: str, lookups: _Lookups, basespace: bool, storage_id: int
) -> dict[str, Any]:
    filename = _last_segment(path)
    if basespace:
        try:
            filename = await lookups.alias(storage_id, path)
        except ResolveError as exc:
            raise BuildError(exc.message) from None
    return {
        "path": path,
        "filename": filename,
        "size": 0,
        "status": "uploaded",
        "storage_id": storage_id,
    }


async def _sample(row: Row, lookups: _Lookups, sample_type: str) -> dict[str, Any]:
    files = row.get("Files Names")
    name = row.get("BioSample Name")
    if files == "existing":
        hit = await lookups.resolver.find_sample(name)
        if hit is None:
            raise BuildError(f"BioSample Name {name} is not an existing sample")
        return {"id": hit["id"], "fastq": name}
    # An absent cell (ragged row) leaves ``fastq`` out; an empty one sends "".
    sample: dict[str, Any] = {"fastq": name} if "BioSample Name" in row.cells else {}
    sample.update({"status": "uploaded", "sampleFiles": []})
    if not files:
        return sample
    storage_id = int(row.get("Storage Provider Id").strip())
    try:
        basespace = (await lookups.storage(storage_id)).get("scheme") == "basespace"
    except ResolveError as exc:
        raise BuildError(exc.message) from None
    entries: list[dict[str, Any]] = []
    if files == "auto":
        found = await lookups.auto_files(storage_id, row.get("Default Project"), name)
        for path, alias in found or []:
            entries.append(
                {
                    "path": path,
                    "filename": alias,
                    "size": 0,
                    "status": "uploaded",
                    "storage_id": storage_id,
                }
            )
    else:
        for path in split_items(files):
            entries.append(await _file_entry(row, path, lookups, basespace, storage_id))
    if sample_type == "vcf":
        for entry in entries:
            entry["vcf_column_name"] = name
        await _add_visualization(row, lookups, basespace, storage_id, sample, entries)
    sample["sampleFiles"] = entries
    return sample


async def _add_visualization(
    row: Row,
    lookups: _Lookups,
    basespace: bool,
    storage_id: int,
    sample: dict[str, Any],
    entries: list[dict[str, Any]],
) -> None:
    for path in split_items(row.get("Visualization Files")):
        entry = await _file_entry(row, path, lookups, basespace, storage_id)
        if entry["filename"].endswith(BAM_SUFFIXES):
            sample["bam_location"] = path
            sample["storage_id"] = storage_id
        else:
            entries.append(
                {key: entry[key] for key in ("filename", "path", "size", "status", "storage_id")}
            )


def _test_data_head(proband: Row, sample_type: str) -> dict[str, Any]:
    gene_list = int(proband.get("Gene List Id").strip() or "1")
    sequence_info: dict[str, int] = {}
    if proband.get("Kit Id"):
        sequence_info["kit_id"] = int(proband.get("Kit Id").strip())
    if proband.get("Intersect Bed Id"):
        sequence_info["intersect_bed_id"] = int(proband.get("Intersect Bed Id").strip())
    data: dict[str, Any] = {
        "boostGenes": proband.get("Boost Genes").strip().lower() == "true",
        "labels": [int(item) for item in split_items(proband.get("Label Id"))],
        "sample_type": sample_type,
        "type": proband.get("Case Type"),
        "sequence_info": sequence_info,
        "gene_list": {"id": gene_list, "type": "all" if gene_list == 1 else "existing"},
    }
    if "Selected Preset" in proband.cells:
        data["selected_preset_set"] = proband.cells["Selected Preset"]
    if proband.get("Due Date"):
        data["due_date"] = proband.get("Due Date")
    if "Clinical Notes" in proband.cells:
        data["notes"] = proband.cells["Clinical Notes"]
    data["extra_data"] = {
        name: value for name, value in proband.cells.items() if name not in KNOWN_COLUMNS and value
    }
    return data


async def build_payload(family: Family, resolver: Resolver) -> dict[str, Any]:
    """The create body the official CLI v36 sends for this family (BEHAVIOUR §3).

    Expects a family that passed ``check_family``; raises ``BuildError`` (for the proband row)
    when a look-up fails while building.
    """
    view = _View(family)
    proband = view.proband
    if proband is None:
        raise BuildError("Relation proband is required")
    lookups = _Lookups(resolver)
    sample_type = await _sample_type(view, lookups)
    data = _test_data_head(proband, sample_type)
    patients, members = _patients(view)
    data["patients"] = patients
    data["samples"] = [
        await _sample(row, lookups, sample_type)
        for row in members
        if row is proband or row.get("Files Names")
    ]
    execute_now = proband.get("Execute Now").strip().lower()
    opt_in = proband.get("Opt In").strip().lower()
    return {
        "should_upload": bool(execute_now) and execute_now != "true",
        "test_data": data,
        "sharing_level": 0 if opt_in == "false" else 1,
    }


# --------------------------------------------------------------------------- manifest-wide


def check_manifest_wide(manifest: Manifest, *, today: dt.date | None = None) -> list[Problem]:
    """Checks across families that the official CLI lacks.

    * ``Family Id`` rows split into blocks (warning: legal, but often a copy-paste slip);
    * a BioSample Name with data files in two families (error: the server assigns a sample to
      one case only, so the second create would fail half-way through a run); a pending
      sample name in two families is a warning;
    * action columns: ``Assign To`` e-mails, ``Set Status`` values, ``Preset Gene Lists`` items
      and ``Preset Group`` required with gene lists (errors);
    * a birth date in the future (warning).

    Rows with an empty ``Family Id`` are reported by ``check_family`` (official stage 1).
    """
    file = manifest.path.name
    today = today or dt.date.today()
    problems = _split_blocks(manifest, file)
    key = "Family Id" if "Family Id" in manifest.columns else "Case Id"
    owners: dict[str, str] = {}
    wanted = (key, "BioSample Name", "Files Names", "Date Of Birth", *_ACTION_CELLS)
    actions = any(column in manifest.columns for column in _ACTION_CELLS)
    for number, cells in manifest.cell_rows(wanted):
        family_id, sample, files, born_text = cells[:4]
        problems += _shared_sample(number, family_id, sample, files, owners, file)
        if actions:
            row = Row(number=number, cells=dict(zip(_ACTION_CELLS, cells[4:], strict=True)))
            problems += _action_row(row, family_id, file)
        born = parse_date(born_text) if born_text else None
        if born is not None and born > today:
            problems.append(
                Problem(
                    file,
                    number,
                    family_id,
                    "Date Of Birth",
                    born_text,
                    "the birth date is in the future",
                    None,
                    "warning",
                )
            )
    return problems


_ACTION_CELLS = ("Assign To", "Set Status", "Preset Group", "Preset Gene Lists")


def _split_blocks(manifest: Manifest, file: str) -> list[Problem]:
    problems: list[Problem] = []
    for family_id in manifest.family_ids:
        positions = manifest.row_positions(family_id)
        if positions[-1] - positions[0] + 1 == len(positions):
            continue
        gap = next(b for a, b in itertools.pairwise(positions) if b != a + 1)
        problems.append(
            Problem(
                file,
                manifest.row_number(gap),
                family_id,
                "Family Id",
                family_id,
                "the family's rows are not next to each other (rows of one family are grouped"
                " wherever they are)",
                "check that two families do not share an id by mistake",
                "warning",
            )
        )
    return problems


def _shared_sample(number: int, family_id: str, name: str, files: str,
                   owners: dict[str, str], file: str) -> list[Problem]:
    if not name:
        return []
    owner = owners.setdefault(name, family_id)
    if owner == family_id:
        return []
    severity: Literal["error", "warning"] = "error" if files else "warning"
    return [
        Problem(
            file,
            number,
            family_id,
            "BioSample Name",
            name,
            f"BioSample Name {name} is also used in family {owner}",
            "a sample belongs to one case",
            severity,
        )
    ]


def _action_row(row: Row, family_id: str, file: str) -> list[Problem]:
    found: list[Problem] = []

    def bad(column: str, message: str, hint: str) -> None:
        found.append(Problem(file, row.number, family_id, column, row.get(column), message, hint))

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
    wrong = [item for item in split_items(lists) if not _GENE_LIST_ITEM.match(item)]
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
