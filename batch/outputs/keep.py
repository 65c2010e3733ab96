"""What an output never replaces: a manifest a command reads, the ledger, and a results file
holding Case Ids that the one about to be written would lose (the only record of a run's
cases for someone without the ledger).

A manifest or a ledger is refused outright (``UsageError``, exit 2, nothing written). A results
file with Case Ids the new results lack is kept, and the new results go beside it
(``<stem>_results-2.csv``): a ``validate`` of an edited manifest still gets its errors file,
and the run's file stays. A Case Id the writer's ledger accounts for (a case moved to the
trash by ``revert``) may leave the file: that is the ledger's record, not a loss.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Set
from pathlib import Path

from batch.errors import UsageError

#: Rows searched for the ``Case Id`` header (past a ``[Data]`` row and other leading rows).
HEADER_ROWS = 50
#: Files SQLite and the lock keep beside a ledger.
LEDGER_FILES = ("", "-wal", "-shm", ".lock")


def same_file(a: Path, b: Path) -> bool:
    """Whether *a* and *b* name one file (links and relative names seen through)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist: compare the names as they resolve
        return a.resolve() == b.resolve()


def refuse_inputs(out: Path, *, manifests: Iterable[Path] = (), ledger: Path | None = None,
                  option: str = "--out") -> None:
    """``UsageError`` when *out* is a manifest in *manifests* or a file of *ledger*: no
    command writes over what it reads."""
    for manifest in manifests:
        if same_file(out, manifest):
            raise UsageError(f"{option} {out} is the manifest {manifest}: it is never "
                             f"overwritten; choose another {option} file")
    if ledger is None:
        return
    for suffix in LEDGER_FILES:
        if same_file(out, ledger.with_name(ledger.name + suffix)):
            raise UsageError(f"{option} {out} is a file of the ledger {ledger}; choose "
                             f"another {option} file")


def case_ids_held(path: Path) -> set[str]:
    """The ``Case Id`` cells of the CSV at *path* (none when there is no such file or
    column). Read as a stream: a results file may have 100,000 rows."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _case_ids(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return set()


def _case_ids(rows: Iterable[list[str]]) -> set[str]:
    column: int | None = None
    held: set[str] = set()
    for number, row in enumerate(rows):
        if column is None:
            if number >= HEADER_ROWS:
                break
            cells = [cell.strip() for cell in row]
            column = cells.index("Case Id") if "Case Id" in cells else None
        elif column < len(row) and row[column].strip():
            held.add(row[column].strip())
    return held


def keep_case_ids(out: Path, written: Callable[[], Set[str]]) -> Path:
    """Where results holding the Case Ids ``written()`` (with those the writer's ledger
    accounts for) go: *out*, unless it holds others, then the first of ``<stem>-2<suffix>``,
    ``-3``, ... that holds no others (so a repeated ``validate`` replaces its own file, not
    the run's). *written* is called only when *out* holds Case Ids."""
    held = case_ids_held(out)
    if not held:
        return out
    kept = written()
    if held <= kept:
        return out
    number = 2
    while True:
        beside = out.with_name(f"{out.stem}-{number}{out.suffix}")
        if not beside.exists() or case_ids_held(beside) <= kept:
            return beside
        number += 1


def refuse_existing(paths: Iterable[Path], *, option: str = "--force") -> None:
    """``UsageError`` naming the files of *paths* that exist (nothing is written)."""
    found = [str(path) for path in paths if path.exists() or path.is_symlink()]
    if found:
        which = "it" if len(found) == 1 else "them"
        raise UsageError(f"{', '.join(found)} already exist{'s' if len(found) == 1 else ''};"
                         f" left as {'it is' if len(found) == 1 else 'they are'}: pass {option}"
                         f" to replace {which}")
