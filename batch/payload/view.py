"""What the validation stages and the builder share: the family as they see it, and the
report the stages write their problems to."""

from __future__ import annotations

from collections.abc import Sequence

from batch.manifest import Family, Problem, Row


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


def plural(items: Sequence[str], one: str, many: str) -> str:
    """``one: a`` or ``many: a;b`` (the official CLI's wording for lists of bad items)."""
    return f"{one if len(items) == 1 else many}: {';'.join(items)}"
