"""The official CLI's results file (``<stem>_results.csv``): the manifest's rows with ``Case Id``
on each proband row of a family whose case exists and ``Errors`` on the rows of families that
failed (BEHAVIOUR §4).

Rows are the manifest's cells, re-quoted only where needed, with ``Case Id`` first (and
``Errors`` before it when any row has errors). Manifest cells stay verbatim on purpose: this is
the re-runnable official format. What emg-batch itself writes into it (the ``Errors`` text and
case names the server gave) is made formula-safe (``batch.outputs.files``).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence, Set
from pathlib import Path
from typing import IO

from batch.ledger import Ledger
from batch.manifest import Manifest
from batch.outputs.files import atomic_path, formula_safe
from batch.outputs.keep import keep_case_ids
from batch.outputs.outcomes import case_of, known_cases, problem_message, revert_note


def output_file(out: Path, name: str) -> Path:
    """*out* itself, or *name* inside it when *out* is an existing directory."""
    return out / name if out.is_dir() else out


def write_results(ledger: Ledger, manifest: Manifest, out: Path) -> Path:
    """Write the official CLI's results file (``<stem>_results.csv``) for *manifest*.

    ``Case Id`` holds, on each proband row, the case of every family whose create succeeded (or
    was adopted) or that named a Case Id already; ``Errors`` holds, on the proband row of each
    failed or unknown family, one line saying which step went wrong and why (and, with no
    ``Case Id``, that a reverted family's case was moved to the trash). Families the ledger
    does not hold (never attempted) get neither. *out* is the file, or a directory to put
    ``<stem>_results.csv`` in.

    The manifest's cells are copied verbatim, formula-looking ones included: this file is the
    official CLI's re-runnable format, and quoting them for spreadsheet safety would change the
    manifest that a re-run reads (the review workbook is the file for people to open). The
    ``Errors`` text and new case names are emg-batch's and the server's: those are quoted when
    a spreadsheet would run them (a leading ``'``).
    """
    path = output_file(out, f"{manifest.path.stem}_results.csv")
    records = ledger.snapshot()
    known = known_cases(manifest)
    case_ids: dict[str, str] = {}
    errors: dict[int, list[str]] = {}
    # Family by family, without building families: a manifest may hold 100,000 of them.
    for family_id in manifest.family_ids:
        record, named = records.get(family_id), known.get(family_id)
        case = case_of(record, named) if record is not None else named
        reverted = revert_note(record) if record is not None else None
        if case and not reverted:  # a case in the trash is no Case Id to run actions on
            case_ids[family_id] = case
        message = problem_message(record) if record is not None else None
        message = message or reverted
        if message:
            position = manifest.proband_position(family_id)
            if position is None:
                position = manifest.row_positions(family_id)[0]
            errors[manifest.row_number(position)] = [message]
    # the ledger's own cases may leave the file (a revert): that is its record, not a loss
    accounted = {case for record in records.values() if (case := case_of(record))}
    return write_results_csv(manifest, path, case_ids=case_ids, errors=errors,
                             accounted=accounted)


def _quote(cell: str) -> str:
    if any(char in cell for char in ',"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _line(cells: Sequence[str]) -> str:
    return ",".join(_quote(cell) for cell in cells) + "\n"


def results_header(columns: Sequence[str], *, with_errors: bool, with_case_ids: bool) -> list[str]:
    """The results header: ``Errors`` first when any error, then ``Case Id`` (BEHAVIOUR §4)."""
    header = list(columns)
    for name, wanted in (("Case Id", with_case_ids), ("Errors", with_errors)):
        if wanted:
            if name in header:
                header.remove(name)
            header.insert(0, name)
    return header


def write_results_csv(
    manifest: Manifest,
    out: Path,
    *,
    case_ids: Mapping[str, str],
    errors: Mapping[int, Sequence[str]],
    accounted: Set[str] = frozenset(),
) -> Path:
    """Write the official CLI's results file: new case ids on proband rows, errors by row.

    Written to a temporary file next to *out*, then renamed over it; the path written is
    returned. When *out* holds Case Ids these results lack (a run's file, and now the errors
    of an edited manifest), it is kept and the results go beside it (``batch.outputs.keep``);
    Case Ids in *accounted* (the writer's ledger holds them) are no loss.
    """
    with_errors = any(messages for messages in errors.values())
    header = results_header(manifest.columns, with_errors=with_errors, with_case_ids=bool(case_ids))
    new_ids = _proband_case_ids(manifest, case_ids)
    out = keep_case_ids(Path(out), lambda: _case_ids_written(manifest, new_ids) | accounted)
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        for cells in manifest.prefix:
            handle.write(_line(cells))
        handle.write(_line(header))
        _write_result_rows(handle, manifest, header, new_ids, errors)
        for cells in manifest.trailer:
            handle.write(_line(cells))
    return out


def _case_ids_written(manifest: Manifest, new_ids: Mapping[int, str]) -> set[str]:
    """The Case Ids the results will hold: new ones and the manifest's own."""
    written = set(new_ids.values())
    if "Case Id" in manifest.columns:
        written.update(cell for position in range(manifest.row_count)
                       if (cell := manifest.cell(position, "Case Id").strip()))
    return written


def _write_result_rows(handle: IO[str], manifest: Manifest, header: list[str],
                       new_ids: Mapping[int, str], errors: Mapping[int, Sequence[str]]) -> None:
    """Every data row under *header*: the manifest's cells, ``Errors`` and ``Case Id`` filled."""
    where = {name: [i for i, h in enumerate(header) if h == name]
             for name in ("Errors", "Case Id", "Relation")}
    # The csv module quotes exactly as _line does, except that it leaves a lone CR unquoted
    # and writes a row of one empty cell as "".
    exact = len(header) > 1 and not manifest.holds("\r")
    write = (csv.writer(handle, lineterminator="\n").writerow if exact
             else lambda cells: handle.write(_line(cells)))
    for position in range(manifest.row_count):
        number = manifest.row_number(position)
        cells = manifest.row_cells(position)
        values = [cells.get(name, "") for name in header]
        for at in where["Errors"]:
            values[at] = formula_safe(";".join(errors.get(number, ())))
        for at in where["Case Id"]:
            values[at] = _case_cell(values[at], new_ids.get(number))
        for at in where["Relation"]:
            values[at] = values[at] or "proband"
        write(values)


def _case_cell(cell: str, case: str | None) -> str:
    """The ``Case Id`` cell: the manifest's own value verbatim, a case name emg-batch writes
    (from the server) formula-safe."""
    return cell if case is None or case == cell else formula_safe(case)


def _proband_case_ids(manifest: Manifest, case_ids: Mapping[str, str]) -> dict[int, str]:
    """Row number of each proband that gets a new case id."""
    found: dict[int, str] = {}
    for family_id, case_id in case_ids.items():
        position = manifest.proband_position(family_id) if family_id in manifest else None
        if position is not None:
            found[manifest.row_number(position)] = case_id
    return found
