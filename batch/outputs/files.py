"""Writing output files safely: atomically, files 0600 and the folders made for them 0700
(whatever the umask: they hold patient data, like the ledger), with one translation of
``OSError``, and every CSV cell formula-safe.

Every writer of the package (results CSV, review workbook, exports, pull tables, templates)
writes through :func:`atomic_path`, so a reader never sees half a file and a full disk or a
read-only folder is one clear ``OutputError`` naming the file, never a traceback. Reports
have their own path (``batch.pull.paths``) with the same modes, under :func:`writing` too.
:func:`check_writable` tries a location before a run sends anything, so outputs do not fail
at the end of it.

A CSV cell (or header) starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
run as a formula by Excel, LibreOffice and Google Sheets. Every CSV that holds server or
manifest text goes through here: such text gets a leading ``'`` (OWASP's advice against CSV
injection), which a spreadsheet shows as text and a person reads as the value. One rule, two
forms: :func:`formula_safe` for one cell, :func:`csv_safe` for a whole table.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from batch.errors import OutputError

if TYPE_CHECKING:
    import polars as pl


# Cells starting with these are read as formulas by spreadsheet programs (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cannot_write(path: Path, exc: OSError) -> OutputError:
    """The error for an output that cannot be written (the OS's reason, in words)."""
    reason = exc.strerror or type(exc).__name__
    return OutputError(f"cannot write {path}: {reason}")


def os_error_in(exc: BaseException) -> OSError | None:
    """The ``OSError`` behind *exc*: itself, or the one a library wrapped (xlsxwriter's
    ``FileCreateError`` carries it as its argument; others chain it)."""
    for found in (exc, *exc.args[:1], exc.__cause__):
        if isinstance(found, OSError):
            return found
    return None


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Translate ``OSError`` raised while writing *path* (also wrapped by a library, see
    :func:`os_error_in`) into ``OutputError``; anything else goes through as it is."""
    try:
        yield
    except Exception as exc:
        found = os_error_in(exc)
        if found is None:
            raise
        raise cannot_write(path, found) from None


FILE_MODE = 0o600
DIR_MODE = 0o700


def make_dir(path: Path) -> Path:
    """Create *path* (and its missing parents) mode 0700 whatever the umask; folders that
    exist are left as they are. ``OutputError`` when it cannot be made."""
    with writing(path):
        if not path.is_dir():
            missing = [p for p in (path, *path.parents) if not p.exists()]
            for folder in reversed(missing):
                with contextlib.suppress(FileExistsError):  # made meanwhile by another writer
                    os.mkdir(folder, DIR_MODE)
                    os.chmod(folder, DIR_MODE)  # a umask such as 0o777 takes bits away
        if not path.is_dir():
            raise OutputError(f"cannot write {path}: it is not a folder")
    return path


@contextlib.contextmanager
def atomic_path(out: Path) -> Iterator[Path]:
    """A temporary name next to *out*, renamed onto *out* only when the block succeeds.

    The file is created mode 0600: reviews and exports hold patient data, like the ledger.
    A writer may open it up on purpose (``chmod``: templates hold none); a writer that made
    a file of its own under the name gets 0600 again.
    """
    make_dir(out.parent)
    with writing(out):
        # kept open to the end: a file the writer makes anew under the name cannot take over
        # this one's inode number while it is open, so a replacement always shows
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        tmp = Path(name)
        try:
            yield tmp
            _private(tmp, os.fstat(fd).st_ino)
            os.replace(tmp, out)
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _private(tmp: Path, made: int) -> None:
    """0600 for a file the writer replaced or the umask left unreadable to its owner."""
    now = os.stat(tmp)
    if now.st_ino != made or now.st_mode & FILE_MODE != FILE_MODE:
        os.chmod(tmp, FILE_MODE)


def check_writable(out: Path, *, in_place: bool = False) -> Path:
    """``OutputError`` now when *out* could not be written later: its folder is made (0700)
    and a file is made and removed in it (in *out* itself when that is a folder: writers put
    their file inside). With *in_place* (a file written where it is, such as the ledger) an
    existing *out* must open for writing too."""
    folder = out if out.is_dir() and not in_place else out.parent
    make_dir(folder)
    with writing(out):
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(name)
        if in_place and out.is_file():
            os.close(os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC))
    return out


QUOTE = "'"
#: The same characters as ``FORMULA_START``, as one pattern for the vectorised form (hex
#: escapes: a tab or ``-`` inside a class needs no further thought).
FORMULA_PATTERN = "^[" + "".join(f"\\x{ord(c):02X}" for c in FORMULA_START) + "]"


def formula_safe(text: str) -> str:
    """*text*, with a leading ``'`` when a spreadsheet would run it as a formula."""
    return QUOTE + text if text.startswith(FORMULA_START) else text


def csv_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """*frame* ready for a CSV: every text cell and every header made formula-safe.

    Numbers, dates and flags are left alone (they are never formulas); headers that would
    collide once quoted (``=a`` and ``'=a``) keep the first and number the others.
    """
    import polars as pl  # here, so that a command writing no table never loads polars

    cells = frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA_PATTERN))
        .then(pl.lit(QUOTE) + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    )
    return cells.rename(dict(zip(frame.columns, unique(map(formula_safe, frame.columns)),
                                 strict=True)))


def unique(names: Iterable[str]) -> list[str]:
    """*names* in order, a later duplicate renamed ``name (2)``, ``name (3)``, ..."""
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name} ({n})"
        seen.add(candidate)
        out.append(candidate)
    return out
