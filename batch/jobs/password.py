"""A tenant's password from a command the user names (``password_command = "pass show emg/lab"``),
as git's credential helpers do.

The command is split with ``shlex`` and run without a shell, its stdin and stderr the user's (a
password store may ask for a passphrase), within bounded time and output; the first line of
what it prints is the password. A failure is one clear line that never holds the output:
a command that cannot be split or started is a configuration error (``UsageError``, exit 2),
one that fails, hangs, prints nothing or too much is a ``CredentialError`` (exit 3).
"""

from __future__ import annotations

import shlex
import subprocess
import threading
import time

from batch.errors import CredentialError, UsageError

#: Seconds a password command may take (a password store may ask for a passphrase first).
PASSWORD_TIMEOUT = 60.0
#: Bytes of output read at most; a password is a line.
PASSWORD_MAX_BYTES = 64 * 1024


def run_password_command(command: str, *, label: str, timeout: float = PASSWORD_TIMEOUT,
                         limit: int = PASSWORD_MAX_BYTES) -> str:
    """The first line *command* prints; *label* names it in messages (never its output)."""
    argv = _split(command, label)
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, shell=False)
    except FileNotFoundError:
        raise UsageError(f"{label}: no such command: {shlex.quote(argv[0])}") from None
    except OSError as exc:
        raise UsageError(f"{label}: {shlex.quote(argv[0])} cannot be run "
                         f"({exc.strerror or exc})") from None
    try:
        output = _output(proc, label, timeout, limit)
    except BaseException:  # a failure or Ctrl-C: the command does not outlive us
        proc.kill()
        proc.wait()
        raise
    return _first_line(output, label)


def _split(command: str, label: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"{label}: cannot be split into words ({exc})") from None
    if not argv:
        raise UsageError(f"{label}: names no command")
    return argv


def _output(proc: subprocess.Popen[bytes], label: str, timeout: float, limit: int) -> bytes:
    """What *proc* printed, read in a thread so that a silent command cannot hang us."""
    started = time.monotonic()
    box: list[bytes] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: box.append(stdout.read(limit + 1)), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        raise CredentialError(f"{label}: no answer in {timeout:g} s")
    if len(box[0]) > limit:
        raise CredentialError(f"{label}: printed more than {limit // 1024} KB")
    try:
        code = proc.wait(max(0.1, timeout - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        raise CredentialError(f"{label}: did not exit in {timeout:g} s") from None
    stdout.close()
    if code != 0:
        how = f"was stopped by signal {-code}" if code < 0 else f"failed (exit code {code})"
        raise CredentialError(f"{label} {how}")
    return box[0]


def _first_line(output: bytes, label: str) -> str:
    try:
        text = output.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialError(f"{label}: printed something that is not UTF-8 text") from None
    line = text.split("\n", 1)[0].removesuffix("\r")
    if not line:
        raise CredentialError(f"{label}: printed no password on its first line")
    return line
