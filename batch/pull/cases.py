"""Which cases a pull is about: from a manifest (its Case Ids, else its ledger's cases), from a
ledger, or named on the command line; and which samples (``pull samples``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from batch.ledger import Ledger, default_path
from batch.manifest import read_manifest


def cases_from_manifest(path: Path, ledger_path: Path | None = None) -> list[str]:
    """Case names of a manifest: each family's ``Case Id``, else the case its ledger (default
    ``<stem>.ledger.sqlite``) recorded.

    Families with neither are left out (they have no case yet).
    """
    manifest = read_manifest(path)
    recorded: dict[str, str] = {}
    ledger_path = ledger_path or default_path(path)
    if ledger_path.exists():
        with Ledger.open(ledger_path, create=False) as ledger:
            recorded = {f.family_id: f.case_name for f in ledger.iter_families() if f.case_name}
    names = [family.case_id or recorded.get(family.family_id) for family in manifest.families()]
    return list(dict.fromkeys(n for n in names if n))


def cases_from_ledger(path: Path) -> list[str]:
    """Every case name a ledger recorded, in manifest order."""
    with Ledger.open(path, create=False) as ledger:
        names = [f.case_name for f in ledger.iter_families() if f.case_name]
    return list(dict.fromkeys(names))


def samples_from_manifest(path: Path) -> list[str]:
    """Every ``BioSample Name`` of a manifest (each family member's), in file order, once."""
    manifest = read_manifest(path)
    names = (cells[0].strip() for _, cells in manifest.cell_rows(["BioSample Name"]))
    return list(dict.fromkeys(name for name in names if name))


def split_cases(values: Iterable[str]) -> list[str]:
    """Case names from repeated or comma-separated options, duplicates dropped."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return list(dict.fromkeys(names))
