"""Validation stages 4 and 5 (BEHAVIOUR §5): file types and visualization files, and the
case's sample type (§3.4), which both the checks and the builder need."""

from __future__ import annotations

from batch.errors import ResolveError
from batch.manifest import Family, Row, split_items
from batch.payload.lookups import Lookups
from batch.payload.resolve import Resolver
from batch.payload.rules import BAM_SUFFIXES, VIZ_SUFFIXES, file_type, is_integer, last_segment
from batch.payload.view import Report, View, plural


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
    basespace = is_integer(storage) and await lookups.is_basespace(int(storage))
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


async def case_sample_type(family: Family, resolver: Resolver) -> str:
    """The case ``sample_type`` from the proband's first file (BEHAVIOUR §3.4)."""
    return await sample_type_of(View(family), Lookups(resolver))


async def sample_type_of(view: View, lookups: Lookups) -> str:
    """The case ``sample_type`` from the proband's first file (BEHAVIOUR §3.4)."""
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
        and "." not in last_segment(first)
        and await lookups.is_basespace(int(storage))
    ):
        try:
            name = await lookups.alias(int(storage), first)
        except ResolveError:
            return "fastq"
    return file_type(name) or "fastq"


async def _viz_items(row: Row, lookups: Lookups) -> list[tuple[str, str]]:
    """``(path, name used for the suffix)`` of a row's visualization files."""
    storage = row.get("Storage Provider Id")
    basespace = is_integer(storage) and await lookups.is_basespace(int(storage))
    items: list[tuple[str, str]] = []
    for item in split_items(row.get("Visualization Files")):
        # Like Files Names: only an id (no dot in the last segment) needs its human name.
        needs_alias = basespace and "." not in last_segment(item)
        name = await lookups.alias(int(storage), item) if needs_alias else item
        items.append((item, name))
    return items


async def stage_visualization(view: View, lookups: Lookups, report: Report) -> None:
    """Stage 5 (VCF cases): known visualization suffixes, at most one BAM/CRAM."""
    if await sample_type_of(view, lookups) == "fastq":
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
                f"{plural(bad, 'Visualization file', 'Visualization files')} not valid",
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
