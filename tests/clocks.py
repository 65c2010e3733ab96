"""A process with a wrong clock: Debian's libfaketime preloaded into the client only (the
sandbox keeps the true time, as a real tenant would)."""

from __future__ import annotations

import glob
import os

import pytest

#: The multi-threaded build: the client runs threads (the ledger's writer, DNS look-ups).
LIBRARY = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))), None)

needs_faketime = pytest.mark.skipif(
    LIBRARY is None, reason="libfaketime is not installed (Debian package faketime; .ci/run "
    "installs it)")


def clock_env(env: dict[str, str], offset: str) -> dict[str, str]:
    """*env* for a process whose clock is *offset* (``+600s``, ``-5m``) from the true time;
    preloaded into the process itself, so a signal sent to it reaches it."""
    if not offset:
        return env
    assert LIBRARY is not None
    preload = " ".join(p for p in (LIBRARY, env.get("LD_PRELOAD", os.environ.get(
        "LD_PRELOAD", ""))) if p)
    return {**env, "LD_PRELOAD": preload, "FAKETIME": offset, "FAKETIME_DONT_RESET": "1"}
