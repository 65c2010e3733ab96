"""docs/revert.md: its shell blocks run in order against a sandbox on loopback, as the README's
do, and the plan it shows is the one the command prints."""

from __future__ import annotations

from pathlib import Path

from tests.test_readme_blocks import REPO, readme_blocks, run_session, session_blocks

PAGE = REPO / "docs" / "revert.md"


def test_the_page_has_runnable_blocks_on_loopback() -> None:
    blocks = session_blocks(PAGE)
    assert len(blocks) >= 4
    for block in blocks:
        assert "https://" not in block.text, f"docs/revert.md line {block.line}"


def test_revert_page_blocks_run_in_order(tmp_path: Path) -> None:
    transcript = run_session(session_blocks(PAGE), tmp_path)
    shown = [b for b in readme_blocks(PAGE) if b.language == "" and b.text.startswith("revert:")]
    assert len(shown) == 1
    assert shown[0].text in transcript.replace("\r\n", "\n")
