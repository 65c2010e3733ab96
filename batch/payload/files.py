"""The case's sample type (BEHAVIOUR §3.4), from the proband's first file: what the checks
(stage 5) and the builder both need."""

from __future__ import annotations

from batch.errors import ResolveError
from batch.manifest import Family, Row, split_items
from batch.payload.lookups import Lookups
from batch.payload.resolve import Resolver
from batch.payload.rules import file_type, is_id, last_segment


async def case_sample_type(family: Family, resolver: Resolver) -> str:
    """The case ``sample_type`` from the proband's first file (BEHAVIOUR §3.4)."""
    return await sample_type_of(family.proband, Lookups(resolver))


async def sample_type_of(proband: Row | None, lookups: Lookups) -> str:
    """The case ``sample_type`` from the proband's first file (BEHAVIOUR §3.4)."""
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
        is_id(storage)
        and "." not in last_segment(first)
        and await lookups.is_basespace(int(storage))
    ):
        try:
            name = await lookups.alias(int(storage), first)
        except ResolveError:
            return "fastq"
    return file_type(name) or "fastq"
