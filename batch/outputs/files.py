"""Writing output files safely: atomically, mode 0600, and with one translation of ``OSError``.

Every writer of the package (results CSV, review workbook, exports, pull tables, reports,
templates) writes through :func:`atomic_path`, so a reader never sees half a file and a full
disk or a read-only folder is one clear ``OutputError`` naming the file, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from batch.errors import OutputError

# Cells starting with these are read as formulas by spreadsheet programs (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cannot_write(path: Path, exc: OSError) -> OutputError:
    """The error for an output that cannot be written (the OS's reason, in words)."""
    reason = exc.strerror or type(exc).__name__
    return OutputError(f"cannot write {path}: {reason}")


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Translate ``OSError`` raised while writing *path* into ``OutputError``."""
    try:
        yield
    except OSError as exc:
        raise cannot_write(path, exc) from None


def make_dir(path: Path) -> Path:
    """Create *path* (and its parents) if missing; ``OutputError`` when it cannot be."""
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(out: Path) -> Iterator[Path]:
    """A temporary name next to *out*, renamed onto *out* only when the block succeeds.

    The file is created mode 0600: reviews and exports hold patient data, like the ledger.
    """
    with writing(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            os.replace(tmp, out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
