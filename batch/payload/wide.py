"""Checks across families that the official CLI lacks (manifest-wide, no look-ups)."""

from __future__ import annotations

import datetime as dt
import itertools
import re

from batch.manifest import Manifest, Problem, Row, split_items
from batch.manifest.columns import ACTION_CELLS
from batch.payload.rules import STATUSES, parse_date

_EMAIL = re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+$")
_CUSTOM_STATUS = re.compile(r"^custom_status_\d+$")
_GENE_LIST_ITEM = re.compile(r"^\d+\s*:\s*\S.*$")


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
    for number, cells in manifest.cell_rows(wanted):
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
