"""Where pulled reports go on disk, ``<out>/<case>/<type>-<id>.<ext>``, and putting them there
safely.

* Names are injective: a component made of letters, digits, ``_``, ``.`` and ``-`` (every
  Emedgene name) is used as it is; any other character, and a leading or trailing dot, is
  written ``~XX`` per UTF-8 byte. ``~`` never appears unescaped, so two names never share a
  file; a very long name is cut and ends with ``~~`` and the SHA-256 of the whole name.
  (On a file system that ignores letter case, names that differ only in case still meet;
  Emedgene's own names are upper case and digits.)
* A case name is checked before it goes into a path or a URL (``batch.api.http``).
* Folders are created 0700 and files 0600, whatever the umask; a symbolic link inside the
  output folder (a case folder or a report file) is never followed: the case is refused.
* A download goes to its own ``.part`` file (process id and a random tag in the name) and is
  renamed onto the report when complete; a ``.part`` left by a process that is gone is removed.
* What a case has is what is on disk: :func:`files_on_disk` lists the complete files of its
  folder (never a ``.part``, never through a link), whichever pull downloaded them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from batch.api import Client
from batch.api.http import check
from batch.errors import OutputError, UnsafePath
from batch.outputs.files import make_dir, writing

EXTENSIONS = {"pdf": ".pdf", "json": ".json"}
LONG = 120  # characters of a component beyond which it is cut and hashed
_SAFE = frozenset(string.ascii_letters + string.digits)
_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                       *(f"LPT{i}" for i in range(1, 10))})  # device names on Windows shares
_PART = re.compile(r"\.(\d+)-[0-9a-f]{8}\.part$")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def component(name: str, *, keep: str = "_.-") -> str:
    """*name* as one file name component, injectively (see the module's docstring)."""
    allowed = _SAFE | frozenset(keep)
    last = len(name) - 1
    reserved = name.split(".")[0].upper() in _RESERVED
    out = []
    for i, char in enumerate(name):
        dot_at_end = char == "." and i in (0, last)
        if char in allowed and not dot_at_end and not (reserved and i == 0):
            out.append(char)
        else:
            out.extend(f"~{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    text = "".join(out) or "~"  # an empty name: "~" alone is no escape of anything
    if len(text) > LONG:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
        text = f"{text[:LONG - len(digest) - 2]}~~{digest}"
    return text


def safe_name(name: str) -> str:
    """A case name as one path component (Emedgene names pass unchanged)."""
    return component(name)


def report_name(report_type: str, report_id: str | int) -> str:
    """``<type>-<id>.<ext>``; the extension follows the type (else ``.bin``). The type keeps
    no ``-`` of its own, so the first ``-`` always ends it."""
    ext = EXTENSIONS.get(report_type, ".bin")
    return f"{component(report_type, keep='_.')}-{component(str(report_id))}{ext}"


def report_path(out: Path, case: str, report_type: str, report_id: str | int) -> Path:
    """``<out>/<case>/<type>-<id>.<ext>`` (names as :func:`component` writes them)."""
    return out / safe_name(case) / report_name(report_type, report_id)


def _refused(path: Path, what: str) -> UnsafePath:
    return UnsafePath(f"{path} is {what}; not followed: remove it and pull again")


def _open_dir(folder: Path) -> int:
    """A descriptor of *folder*, which must be a real folder (never a symbolic link)."""
    try:
        return os.open(folder, _DIR_FLAGS)
    except OSError:
        if os.path.islink(folder) or (os.path.lexists(folder) and not os.path.isdir(folder)):
            raise _refused(folder, "a symbolic link or not a folder") from None
        raise


def case_folder(out: Path, case: str) -> Path:
    """The folder of *case* in *out*: checked name, created 0700, no symbolic link, and no
    ``.part`` left by a pull that was killed. PermanentError for a name that cannot be used,
    UnsafePath for a link, OutputError when it cannot be made."""
    folder = make_dir(out) / safe_name(check(case))
    with writing(folder):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)
        fd = _open_dir(folder)
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) != 0o700:
                with contextlib.suppress(PermissionError):  # not ours: leave it as it is
                    os.fchmod(fd, 0o700)
            _clean_partials(fd)
        finally:
            os.close(fd)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _clean_partials(folder_fd: int) -> None:
    """Remove the ``.part`` files of processes that are gone (complete files never are)."""
    for entry in os.scandir(folder_fd):
        if not entry.name.endswith(".part"):
            continue
        owner = _PART.search(entry.name)
        if owner is None or not _alive(int(owner.group(1))):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.name, dir_fd=folder_fd)


def present(dest: Path) -> bool:
    """Whether the report *dest* is already on disk (a complete file); UnsafePath when a
    symbolic link or anything else but a file is in its place."""
    try:
        mode = os.lstat(dest).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(mode):
        raise _refused(dest, "a symbolic link or not a file")
    return True


async def save_report(client: Client, case: str, report_type: str, report_id: str | int,
                      dest: Path) -> Path:
    """Download one report into *dest* (its folder made by :func:`case_folder`): into a
    ``.part`` of its own, mode 0600, renamed onto *dest* when complete, removed otherwise."""
    part = f"{dest.name}.{os.getpid()}-{secrets.token_hex(4)}.part"
    with writing(dest):
        folder = _open_dir(dest.parent)
        try:
            try:
                with os.fdopen(os.open(part, _FILE_FLAGS, 0o600, dir_fd=folder), "wb") as out:
                    os.fchmod(out.fileno(), 0o600)
                    await client.download_report(case, report_type, report_id, out)
                os.replace(part, dest.name, src_dir_fd=folder, dst_dir_fd=folder)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(part, dir_fd=folder)
                raise
        finally:
            os.close(folder)
    return dest


@dataclass(frozen=True, slots=True)
class ReportFile:
    """A complete report file of a case, as it is on disk."""

    path: Path
    size: int
    #: When it was written (its download completed), UTC to the second, without a zone.
    modified: datetime


def files_on_disk(out: Path, case: str) -> list[ReportFile]:
    """The complete report files in the folder of *case* (see :func:`report_path`), by name:
    none when there is no folder; ``.part`` files, folders and symbolic links are left out.
    UnsafePath when the case folder itself is a link or not a folder, OutputError when it
    cannot be read."""
    folder = out / safe_name(case)
    try:
        fd = _open_dir(folder)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise _unreadable(folder, exc) from None
    try:
        return sorted(_complete_files(folder, fd), key=lambda f: f.path.name)
    except OSError as exc:
        raise _unreadable(folder, exc) from None
    finally:
        os.close(fd)


def _complete_files(folder: Path, folder_fd: int) -> Iterator[ReportFile]:
    for entry in os.scandir(folder_fd):
        if entry.name.endswith(".part") or not entry.is_file(follow_symlinks=False):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed while we looked
            continue
        modified = datetime.fromtimestamp(int(info.st_mtime), UTC).replace(tzinfo=None)
        yield ReportFile(folder / entry.name, info.st_size, modified)


def _unreadable(folder: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot read {folder}: {exc.strerror or type(exc).__name__}")
