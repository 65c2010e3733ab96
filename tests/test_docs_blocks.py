"""Every ```sh block of each ``docs/*.md`` runs, in document order, one bash session per file, as
pasted: the conventions of the README's blocks (``tests/test_readme_blocks.py``), each file in a
temporary folder of its own holding a copy of ``inputs/``, against sandboxes on loopback only."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_readme_blocks import (
    MARKERS,
    SHELL_LANGUAGES,
    URL,
    fixed_ports,
    free_port,
    readme_blocks,
    session_blocks,
    session_env,
    session_script,
    stop_group,
)

REPO = Path(__file__).resolve().parent.parent
DOCS = sorted((REPO / "docs").glob("*.md"))


def _name(path: Path) -> str:
    return path.name


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_doc_blocks_follow_the_conventions(doc: Path) -> None:
    for block in readme_blocks(doc):
        where = f"{doc.name} line {block.line}"
        assert block.language not in SHELL_LANGUAGES - {"sh"}, where
        if "not run by tests" in block.marker:
            assert block.marker in MARKERS and MARKERS[block.marker](block.text), where
    for block in session_blocks(doc):
        for host in URL.findall(block.text):
            assert host.startswith("127."), f"{doc.name} line {block.line}: {host}"


@pytest.mark.parametrize("doc", [d for d in DOCS if session_blocks(d)], ids=_name)
def test_doc_shell_blocks_run_in_order(doc: Path, tmp_path: Path) -> None:
    blocks = session_blocks(doc)
    work = tmp_path / "doc"
    shutil.copytree(REPO / "inputs", work / "inputs")
    env = session_env(work)
    ports = {fixed: free_port() for fixed in fixed_ports(blocks)}
    (work / "doc.sh").write_text(session_script(blocks, ports), encoding="utf-8")
    log = tmp_path / "session.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["bash", "doc.sh"], cwd=work, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            stop_group(proc)
    transcript = log.read_text(encoding="utf-8", errors="replace")
    assert code == 0, f"{doc.name}:\n{transcript[-6000:]}"
    assert "Traceback" not in transcript, transcript[-6000:]
