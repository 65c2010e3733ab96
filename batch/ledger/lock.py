"""The process lock of a ledger: ``<ledger>.lock``, mode 0600 whatever the umask, holding the
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
import os
import stat
from pathlib import Path

from batch.errors import LedgerError
from batch.ledger.disk import FILE_MODE, reason

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
