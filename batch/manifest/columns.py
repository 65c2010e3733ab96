"""The manifest's vocabulary: column names, and how list cells are split.

The 23 official columns are the official template's, in its order. Action columns have
multi-word names so that they never collide with custom fields (any other column, which goes to
``test_data.extra_data``).
"""

from __future__ import annotations

OFFICIAL_COLUMNS: tuple[str, ...] = (
    "Family Id",
    "Case Type",
    "Files Names",
    "Sample Type",
    "BioSample Name",
    "Visualization Files",
    "Storage Provider Id",
    "Default Project",
    "Execute Now",
    "Relation",
    "Sex",
    "Phenotypes",
    "Phenotypes Id",
    "Date Of Birth",
    "Boost Genes",
    "Gene List Id",
    "Kit Id",
    "Intersect Bed Id",
    "Selected Preset",
    "Label Id",
    "Clinical Notes",
    "Due Date",
    "Opt In",
)
#: Columns that ask for steps after the create (``Case Id``: there is nothing to create).
ACTION_COLUMNS = ("Case Id", "Assign To", "Set Status", "Preset Group", "Preset Gene Lists")
#: The action columns that ask for a step.
ACTION_CELLS = ACTION_COLUMNS[1:]
#: Columns that are never custom fields (never copied into ``extra_data``).
KNOWN_COLUMNS = frozenset((*OFFICIAL_COLUMNS, "Gender", "Errors", *ACTION_COLUMNS))
REQUIRED_COLUMNS = ("Family Id", "Case Type", "Files Names")
OFFICIAL_FAMILY_LIMIT = 50
#: What a family's content hash leaves out: action columns ask for steps, not data.
HASH_IGNORED = frozenset(("Case Id", "Errors", *ACTION_COLUMNS))


def is_proband(relation: str) -> bool:
    """The proband row: Relation ``proband`` or empty (the official default)."""
    return relation in ("proband", "")


def split_items(cell: str) -> list[str]:
    """Items of a ``;`` list: trimmed, empty items dropped."""
    if not cell:
        return []
    if ";" not in cell:  # one item: most cells
        item = cell.strip()
        return [item] if item else []
    return [item for item in map(str.strip, cell.split(";")) if item]


def parse_gene_lists(cell: str) -> tuple[tuple[int, str], ...]:
    """``<id>:<name>`` items of ``Preset Gene Lists``; malformed items are left out."""
    parsed: list[tuple[int, str]] = []
    for item in split_items(cell):
        number, sep, name = item.partition(":")
        if sep and number.strip().isdigit() and name.strip():
            parsed.append((int(number.strip()), name.strip()))
    return tuple(parsed)
