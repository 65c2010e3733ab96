"""The ledger's files on disk: the database and its ``-wal`` and ``-shm`` companions kept mode
0600 (the folders made for them 0700) whatever the umask, and a file that is not a SQLite
database refused before SQLite is let near it.

A pre-created empty file is a new ledger. Every refusal is a ``LedgerError`` naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from pathlib import Path

from batch.errors import LedgerError, LedgerWriteError

FILE_MODE = 0o600
DIR_MODE = 0o700
log = logging.getLogger(__name__)

#: The first bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"
#: The files SQLite keeps beside a database in WAL mode.
COMPANIONS = ("-wal", "-shm")


#: errno values of a disk that refuses a write; SQLite's result codes for the same.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})
DISK_SQLITE_CODES = frozenset({10, 13})  # SQLITE_IOERR, SQLITE_FULL (primary codes)


def ledger_error(message: str, exc: BaseException) -> LedgerError:
    """*message* as the error it is: ``LedgerWriteError`` when the disk refused the write
    (exit 3, like any output), else ``LedgerError``."""
    code = getattr(exc, "sqlite_errorcode", None)
    full = (isinstance(exc, OSError) and exc.errno in DISK_ERRNOS) or (
        isinstance(code, int) and code & 0xFF in DISK_SQLITE_CODES)
    return LedgerWriteError(message) if full else LedgerError(message)


def reason(exc: OSError) -> str:
    """The OS's reason for *exc*, in words."""
    return exc.strerror or type(exc).__name__


def prepare(path: Path, *, create: bool) -> None:
    """Make *path* ready to open as a ledger: created (0600) when missing and *create*, else
    refused when missing; refused when not a file or not SQLite."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        if not create:
            raise LedgerError(
                f"no ledger at {path}: run the manifest first, or pass --ledger PATH") from None
        _create(path)
        return
    except OSError as exc:
        raise LedgerError(f"cannot open ledger {path}: {reason(exc)}") from None
    if not stat.S_ISREG(found.st_mode):
        raise LedgerError(f"ledger {path} is not a file: pass --ledger with a file name")
    _check_header(path, found.st_size)  # made 0600 once accepted as a ledger (schema.connect)


def _create(path: Path) -> None:
    _make_folders(path.parent)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:  # made meanwhile by another process: it is checked when opened
        return
    except OSError as exc:
        raise ledger_error(f"cannot create ledger {path}: {reason(exc)}", exc) from None
    try:
        os.fchmod(fd, FILE_MODE)  # a umask such as 0o700 takes the owner's bits away
    finally:
        os.close(fd)


def _make_folders(folder: Path) -> None:
    """Create *folder* and its missing parents, mode 0700 whatever the umask."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for made in reversed(missing):
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(made, DIR_MODE)
                os.chmod(made, DIR_MODE)
        except OSError as exc:
            raise LedgerError(f"cannot create the ledger's folder {made}: {reason(exc)}") from None


def _check_header(path: Path, size: int) -> None:
    """A non-empty file must start as every SQLite database does."""
    if size == 0:
        return
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {path}: {reason(exc)}") from None
    if head != SQLITE_HEADER:
        raise LedgerError(
            f"{path} is not an emg-batch ledger (not a SQLite database); it was left as it is. "
            "Pass another --ledger PATH, or move that file away."
        )


def private(path: Path, *, itself: bool = True) -> None:
    """Mode 0600 for the ledger (unless not *itself*) and its ``-wal`` and ``-shm`` files,
    where they are not.

    A file of another user's is left as its owner made it (only they may change it), with a
    warning; any other failure is a ``LedgerError``.
    """
    files = [path.with_name(path.name + suffix) for suffix in COMPANIONS]
    for file in [path, *files] if itself else files:
        try:
            mode = stat.S_IMODE(os.stat(file).st_mode)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise _not_private(file, exc) from None
        if mode != FILE_MODE:
            _make_private(file, mode)


def _make_private(file: Path, mode: int) -> None:
    try:
        os.chmod(file, FILE_MODE)
    except PermissionError:
        log.warning("ledger file %s is mode %o and belongs to another user: left as it is",
                    file, mode)
    except OSError as exc:
        raise _not_private(file, exc) from None


def _not_private(file: Path, exc: OSError) -> LedgerError:
    return LedgerError(f"cannot make ledger file {file} private (mode 0600): {reason(exc)}")


def remove(path: Path) -> None:
    """Remove the closed ledger at *path* with its companions (those that are left); never its
    lock file, which only the lock's holder removes (see ``lock.release``)."""
    for suffix in ("", *COMPANIONS):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path.with_name(path.name + suffix))
