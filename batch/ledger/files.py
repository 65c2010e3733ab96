"""The ledger's files on disk: the database and its ``-wal`` and ``-shm`` companions kept mode
0600 (the folders made for them 0700) whatever the umask, and a file that is not a SQLite
database refused before SQLite is let near it.

A pre-created empty file is a new ledger. Every refusal is a ``LedgerError`` naming the file.

The process lock: ``<ledger>.lock``, mode 0600 whatever the umask, holding the
pid of the process that has the ledger, and removed when it lets go.

Removing a lock file is safe only with a check on the taking side: a process that opened the
file just before its holder removed it would lock a file no longer on disk. So after taking
the lock, the taker checks that the path still names the file it locked, and starts over when
it does not. The holder removes the file while it still holds the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
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

#: Tries at taking a lock whose file is removed under us each time (a busy ledger).
ATTEMPTS = 20


def lock_path(ledger: Path) -> Path:
    """Where the lock file of *ledger* is."""
    return ledger.with_name(ledger.name + ".lock")


def acquire(ledger: Path) -> int:
    """Take the lock of *ledger* for this process; the descriptor that holds it.

    ``LedgerError`` when another process holds it, naming its pid, or when the lock file
    cannot be made.
    """
    path = lock_path(ledger)
    for _ in range(ATTEMPTS):
        fd = _open(path, ledger)
        try:
            taken = _take(fd, path, ledger)
        except BaseException:
            os.close(fd)
            raise
        if taken:
            return fd
        os.close(fd)
    raise LedgerError(f"cannot lock ledger {ledger}: its lock file {path} keeps being replaced")


def _open(path: Path, ledger: Path) -> int:
    # never through a link: a planted lock "file" would have another file truncated
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOCTTY
    try:
        fd = os.open(path, flags, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LedgerError(f"cannot lock ledger {ledger}: {path} is a symbolic link; "
                              "remove it and rerun") from None
        raise LedgerError(f"cannot lock ledger {ledger}: {path}: {reason(exc)}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LedgerError(f"cannot lock ledger {ledger}: {path} is not a regular file; "
                          "remove it and rerun")
    with contextlib.suppress(PermissionError):  # another user's file: it holds only a pid
        if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    return fd


def _take(fd: int, path: Path, ledger: Path) -> bool:
    """Lock *fd*; False when *path* no longer names it (its holder removed it meanwhile)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "another process"
        raise LedgerError(
            f"ledger {ledger} is in use by another emg-batch process (pid {holder}); "
            "wait for it to finish, or use a different --ledger"
        ) from None
    try:
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            return False
    except FileNotFoundError:
        return False
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
    return True


def holder(ledger: Path) -> int | None:
    """The pid of the live process that holds *ledger*'s lock, read without taking it (a
    reader must never make a starting run fail); None when no live process holds it.

    The lock file goes with its holder, unless the holder was killed: then the pid it names
    is of a process that is gone (``os.kill(pid, 0)`` says so), or, rarely, reused."""
    try:
        with open(lock_path(ledger), "rb") as handle:
            text = handle.read(32).decode("ascii", "replace").strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    try:
        os.kill(pid, 0)
    except PermissionError:
        return pid  # alive, another user's
    except (OSError, OverflowError):
        return None
    return pid


def release(fd: int, ledger: Path) -> None:
    """Remove the lock file of *ledger* (while it is still held), then let the lock go."""
    path = lock_path(ledger)
    try:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.unlink(path)
    finally:
        os.close(fd)
