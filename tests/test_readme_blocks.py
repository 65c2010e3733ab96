"""Every ```sh block of README.md and of each page in docs/ runs, in document order, in one
bash session per document, as pasted.

Each session works in a temporary folder holding a copy of the repository's ``inputs/`` (never the
checkout itself), against sandboxes on loopback only: each fixed port of the README (8765, ...)
is replaced by a free port. The README's install lines (``python3.11 -m venv .venv &&
.venv/bin/pip install ...``) are not re-run: they are replaced by ``true``, and ``.venv/bin/``
holds the ``emg-batch`` this test's own environment installed. Blocks marked on the line before
the fence with one of the comments in ``MARKERS`` are skipped, and only those; each marked block
must look like what its comment says. A block that expects a non-zero exit says so
(``cmd || test $? -eq 1``); the session holds it to exactly that code. Background commands
(``emg-batch sandbox ... &``) must still be running at the end; the session then stops them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
#: Every document whose shell blocks run: the README, then each page of docs/.
DOCUMENTS = [README, *sorted((REPO / "docs").glob("*.md"))]


def _tenant_block(text: str) -> bool:
    return "https://" in text or "$EMG_HOST" in text


def _suite_block(text: str) -> bool:
    return "pytest" in text


# The comment on the line before a fence that keeps the block out of this session, and what a
# block so marked must look like.
MARKERS: dict[str, Callable[[str], bool]] = {
    "<!-- needs a tenant: not run by tests -->": _tenant_block,
    # The suite cannot run inside itself; .ci/run runs these commands in a fresh environment.
    "<!-- runs the test suite: not run by tests -->": _suite_block,
}
FENCE = re.compile(r"^```(\S*)\s*$")
SHELL_LANGUAGES = {"sh", "bash", "shell", "console", "zsh"}
INSTALL = re.compile(r"python3(?:\.\d+)? -m venv \.venv && \.venv/bin/pip install"
                     r"(?: -e)? (?:'[^']*'|\S+)")
FIXED_PORT = re.compile(r"(?:--port |127\.0\.0\.1:|localhost:)(\d{2,5})\b")
URL = re.compile(r"\bhttps?://([^/:\s\"']+)")
# Strict form of `cmd || test $? -eq N`: an exit 0 of cmd fails the line too.
EXPECTED_EXIT = re.compile(r"^(?P<cmd>\S.*?) \|\| test \$\? -eq (?P<code>\d+)(?P<rest>.*)$", re.M)


@dataclass(frozen=True)
class Block:
    """One fenced block of the README: where it starts, its language, text and marker."""

    line: int
    language: str
    text: str
    marker: str


def readme_blocks(document: Path = README) -> list[Block]:
    """Every fenced block of *document* in document order."""
    lines = document.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        marker = lines[index - 1].strip() if index else ""
        blocks.append(Block(index + 1, opening.group(1), "\n".join(lines[index + 1:end]) + "\n",
                            marker if marker.startswith("<!--") else ""))
        index = end + 1
    return blocks


def sh_blocks(document: Path = README) -> list[Block]:
    return [block for block in readme_blocks(document) if block.language == "sh"]


def session_blocks(document: Path = README) -> list[Block]:
    return [block for block in sh_blocks(document) if block.marker not in MARKERS]


def name(document: Path) -> str:
    return str(document.relative_to(REPO))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def fixed_ports(blocks: list[Block]) -> list[str]:
    found = (FIXED_PORT.findall(block.text) for block in blocks)
    return sorted({port for ports in found for port in ports})


def strict_exits(text: str) -> str:
    """`cmd || test $? -eq N` with exit 0 of cmd turned into a failure that names it."""
    return EXPECTED_EXIT.sub(
        lambda m: (f"{{ {m['cmd']} && readme_exit_was_0 {m['code']}; }} "
                   f"|| test $? -eq {m['code']}{m['rest']}"), text)


PROLOGUE = """\
set -euo pipefail
readme_exit_was_0() { echo "expected exit $1, got 0" >&2; return 255; }
readme_stop_jobs() { local pids; pids=$(jobs -p); [ -z "$pids" ] || { kill $pids || :; wait; }; }
trap readme_stop_jobs EXIT
trap 'echo "README.md block at line $readme_line failed: $BASH_COMMAND" >&2' ERR
"""
EPILOGUE = """\
if jobs | grep -v Running >&2; then
  echo "a background command of the README ended early" >&2
  exit 1
fi
echo "README session: every block ran" >&2
"""


def session_script(blocks: list[Block], ports: dict[str, int], document: str = "README.md") -> str:
    parts = [PROLOGUE.replace("README.md", document)]
    for block in blocks:
        text = INSTALL.sub("true", block.text)
        for fixed, port in ports.items():
            text = re.sub(rf"\b{fixed}\b", str(port), text)
        parts.append(f"readme_line={block.line}\necho '### {document} line {block.line}' >&2\n"
                     f"{strict_exits(text)}")
    parts.append(EPILOGUE)
    return "\n".join(parts)


def session_env(tmp_path: Path) -> dict[str, str]:
    """The user's environment without EMG_* settings or shell start-up files, the installed
    `emg-batch` first on PATH."""
    installed = shutil.which("emg-batch", path=str(Path(sys.executable).parent))
    if installed is None:
        pytest.fail(f"no emg-batch next to {sys.executable}: pip install -e '.[test]' first")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "emg-batch").symlink_to(installed)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("EMG_") and key not in ("BASH_ENV", "ENV")}
    env["PATH"] = os.pathsep.join([str(Path(installed).parent), env.get("PATH", "")])
    return env


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop what is left of the session's process group.

    The session stops and reaps its own background commands when it exits; this is for a session
    that did not exit in time.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _group_alive(proc):
            time.sleep(0.05)


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    proc.poll()
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_readme_and_docs_have_shell_blocks() -> None:
    assert len(session_blocks()) >= 4
    assert any(block.marker for block in sh_blocks())
    assert sum(len(session_blocks(d)) for d in DOCUMENTS[1:]) >= 4


@pytest.mark.parametrize("document", DOCUMENTS, ids=name)
def test_shell_blocks_are_fenced_as_sh(document: Path) -> None:
    """A shell block fenced as anything but ```sh would escape this test."""
    others = SHELL_LANGUAGES - {"sh"}
    assert [(b.line, b.language) for b in readme_blocks(document) if b.language in others] == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=name)
def test_markers_are_known_and_fit_their_blocks(document: Path) -> None:
    where = name(document)
    for block in readme_blocks(document):
        if "not run by tests" in block.marker:
            assert block.marker in MARKERS, f"{where} line {block.line}: {block.marker}"
            assert block.language == "sh", f"{where} line {block.line}"
            fits = MARKERS[block.marker]
            assert fits(block.text), f"{where} line {block.line} is not what {block.marker} says"


@pytest.mark.parametrize("document", DOCUMENTS, ids=name)
def test_session_blocks_stay_on_loopback(document: Path) -> None:
    where = name(document)
    for block in session_blocks(document):
        for host in URL.findall(block.text):
            assert host.startswith("127."), f"{where} line {block.line}: {host}"
        assert "https://" not in block.text, f"{where} line {block.line}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=name)
def test_install_lines_are_substituted_not_run(document: Path) -> None:
    for block in session_blocks(document):
        text = INSTALL.sub("true", block.text)
        assert "pip install" not in text and "-m venv" not in text, f"{name(document)} {block.line}"


def test_strict_exits_rewrites_only_the_stated_form() -> None:
    assert strict_exits("emg-batch run a.csv || test $? -eq 1   # exit 1\n") == (
        "{ emg-batch run a.csv && readme_exit_was_0 1; } || test $? -eq 1   # exit 1\n")
    assert strict_exits("emg-batch run a.csv\n") == "emg-batch run a.csv\n"


RUNNABLE = [d for d in DOCUMENTS if session_blocks(d)]


@pytest.mark.slow
@pytest.mark.parametrize("document", RUNNABLE, ids=name)
def test_shell_blocks_run_in_order(document: Path, tmp_path: Path) -> None:
    blocks = session_blocks(document)
    work = tmp_path / "readme"
    shutil.copytree(REPO / "inputs", work / "inputs")
    env = session_env(work)
    ports = {fixed: free_port() for fixed in fixed_ports(blocks)}
    (work / "readme.sh").write_text(session_script(blocks, ports, name(document)),
                                    encoding="utf-8")
    inputs_before = sorted(path.name for path in (REPO / "inputs").iterdir())
    log = tmp_path / "session.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["bash", "readme.sh"], cwd=work, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            stop_group(proc)
    transcript = log.read_text(encoding="utf-8", errors="replace")
    assert code == 0, transcript[-6000:]
    assert "Traceback" not in transcript, transcript[-6000:]
    assert sorted(path.name for path in (REPO / "inputs").iterdir()) == inputs_before
