"""Validating a whole manifest on the pool: the cross-family checks, then every family's stages.

The one validation pass, used by ``run`` (which skips families whose case exists) and by
``validate``. Checks mostly hit the look-up cache, so a worker takes families in batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from batch.manifest import Family, Manifest, Problem
from batch.payload import Lookups, Resolver, check_family, check_manifest_wide, families_to_check
from batch.run.pool import run_pool
from batch.run.progress import Progress, SilentProgress

#: Families a validation worker takes at once; checks mostly hit the look-up cache.
CHECK_BATCH = 32
#: Validation workers at the least: checks wait on look-ups, not on the server's rate.
MIN_CHECKERS = 16


@dataclass(slots=True)
class Checked:
    """What validation found: every problem, and the families with errors."""

    problems: list[Problem] = field(default_factory=list)
    invalid: set[str] = field(default_factory=set)

    def add(self, found: list[Problem]) -> None:
        """Keep *found*; a family with an error is invalid."""
        if not found:  # most families
            return
        self.problems.extend(found)
        self.invalid.update(p.family for p in found
                            if p.severity == "error" and p.family is not None)


async def check_manifest(
    manifest: Manifest,
    resolver: Resolver,
    *,
    concurrency: int,
    wanted: Callable[[Family], bool] = lambda family: not family.case_id,
    skip: Callable[[str], bool] = lambda family_id: False,
    seen: Callable[[int, Family], None] | None = None,
    wide: bool = True,
    progress: Progress | None = None,
    requests: Callable[[], int] = lambda: 0,
) -> Checked:
    """Check every family of *manifest*; problems come back sorted by row.

    *skip(family_id)* leaves a family out unbuilt (its case exists); *seen(seq, family)* is told
    of every other family: whole when it is checked, and as its lead row (``Manifest.lead``)
    when the screen passed it; *wanted(family)* says which are checked; *wide* runs the
    cross-family checks first.
    """
    checked = Checked()
    if wide:
        checked.add(check_manifest_wide(manifest))
    progress = progress or SilentProgress()
    file = manifest.source

    async def check(item: tuple[int, str]) -> None:
        seq, family_id = item
        if not skip(family_id):
            family = manifest.family(family_id)
            if seen is not None:
                seen(seq, family)
            if wanted(family):
                checked.add(await check_family(family, resolver, file=file))
        progress.advance(failed=len(checked.invalid), requests=requests())

    progress.phase("validating", total=len(manifest))
    # a resume skips the families whose case exists: screened only when enough are left
    left = sum(1 for family_id in manifest.family_ids if not skip(family_id))
    to_check = await families_to_check(manifest, Lookups(resolver), pending=left)
    items: Iterable[tuple[int, str]] = enumerate(manifest.family_ids)
    if to_check is not None:  # the others pass every check
        marked = []
        for seq, family_id in items:
            if family_id in to_check:
                marked.append((seq, family_id))
                continue
            if seen is not None and not skip(family_id):
                seen(seq, manifest.lead(family_id))  # all a run registers of it
            progress.advance(failed=len(checked.invalid), requests=requests())
        items = marked
    await run_pool(items, check, concurrency=max(concurrency, MIN_CHECKERS), batch=CHECK_BATCH)
    checked.problems.sort(key=lambda p: p.row or 0)
    return checked
