"""The review workbook as a lab manager opens and prints it: rendered by LibreOffice.

LibreOffice (``soffice``, Debian's ``libreoffice-calc-nogui``) converts the workbook of a real
run to PDF, as printing it would. Every sheet prints one page wide, so the 4-family example
fits on a few pages (it took 16, and 20 for the walk-through's 3 families, when each column
printed on pages of its own). Skipped, saying why, on a machine without LibreOffice.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from batch.cli import main

ROOT = Path(__file__).resolve().parents[1]
SOFFICE = shutil.which("soffice")
pytestmark = pytest.mark.skipif(
    SOFFICE is None, reason="LibreOffice (soffice) is not installed: apt-get install "
                            "libreoffice-calc-nogui to render the review workbook")
#: ``/Type /Page`` objects of a PDF (not ``/Type /Pages``, the page tree).
PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def render(workbook: Path, tmp_path: Path) -> Path:
    """The workbook converted to PDF by LibreOffice, with a profile of its own (so that a
    LibreOffice already running for someone else is never used)."""
    assert SOFFICE is not None
    profile = (tmp_path / "lo-profile").as_uri()
    done = subprocess.run(
        [SOFFICE, f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf",
         "--outdir", str(tmp_path / "pdf"), str(workbook)],
        capture_output=True, text=True, timeout=180, check=False)
    pdf = tmp_path / "pdf" / f"{workbook.stem}.pdf"
    assert done.returncode == 0 and pdf.exists(), done.stderr
    return pdf


def pages(pdf: Path) -> int:
    """Pages of *pdf*: ``pdfinfo`` where poppler-utils is installed, else its page objects."""
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True,
                              check=True).stdout
        return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]
    return len(PAGE.findall(pdf.read_bytes()))


def run_example(tmp_path: Path, name: str) -> Path:
    """``emg-batch run inputs/<name>.csv --sandbox`` in *tmp_path*; its review workbook."""
    manifest = tmp_path / f"{name}.csv"
    shutil.copy(ROOT / "inputs" / f"{name}.csv", manifest)
    env = {"EMG_HOST": "", "EMG_TOKEN": "", "EMG_USERNAME": "", "EMG_PASSWORD": ""}
    result = CliRunner().invoke(main, ["run", str(manifest), "--sandbox", "-q"], env=env,
                                catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    return tmp_path / f"{name}_review.xlsx"


@pytest.mark.slow
def test_the_example_prints_on_a_few_pages(tmp_path: Path) -> None:
    pdf = render(run_example(tmp_path, "example"), tmp_path)
    assert 1 <= pages(pdf) <= 6


@pytest.mark.slow
def test_a_run_with_a_failure_prints_on_a_few_pages(tmp_path: Path) -> None:
    """The walk-through's manifest (one mistyped e-mail): Summary, Failed and Cases."""
    workbook = run_example(tmp_path, "walkthrough")
    pdf = render(workbook, tmp_path)
    assert 1 <= pages(pdf) <= 6
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", "-f", "1", "-l", "1", str(pdf), "-"],
                              capture_output=True, text=True, check=True).stdout
        assert "2 of 3 families are done; 1 needs action: 1 failed" in text
        assert "genetcist@example.com" in text and "Failed, row 2" in text
