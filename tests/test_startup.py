"""The command line starts light: what a command does not use is not imported.

Each check runs in a fresh interpreter (this process has imported everything already) and
looks at ``sys.modules`` afterwards: the heavy libraries (aiohttp, polars, rich, xlsxwriter,
fastexcel) are loaded only by the commands that use them. Speed itself is measured by
``tests/benchmarks/bench_startup.py``, not here.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("aiohttp", "polars", "rich", "xlsxwriter", "fastexcel")
LAZY_PACKAGES = ("batch", "batch.api", "batch.jobs", "batch.run", "batch.sandbox")

#: Runs the command line in-process with the given arguments, then prints which of the heavy
#: libraries got imported (as JSON, on the last line of stdout).
_PROBE = """
import json, sys
heavy = sys.argv[1].split(",")
sys.argv = ["emg-batch", *sys.argv[2:]]
from batch.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def _loaded(*args: str, cwd: Path = REPO) -> list[str]:
    """The heavy libraries a fresh ``emg-batch *args`` process imported."""
    out = subprocess.run([sys.executable, "-c", _PROBE, ",".join(HEAVY), *args], cwd=cwd,
                         capture_output=True, text=True, timeout=120, check=True)
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_command_line_loads_no_heavy_library() -> None:
    code = (f"import sys, batch.cli; print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_help_loads_no_heavy_library() -> None:
    assert _loaded("--help") == []


def test_template_loads_no_heavy_library(tmp_path: Path) -> None:
    assert _loaded("template", "--out-dir", str(tmp_path)) == []
    assert (tmp_path / "batch_template.csv").exists()


def test_status_loads_no_heavy_library(tmp_path: Path) -> None:
    from batch.ledger import Ledger

    Ledger.open(tmp_path / "m.ledger.sqlite").close()
    assert _loaded("status", "--ledger", str(tmp_path / "m.ledger.sqlite")) == []


def test_validate_of_a_csv_loads_no_heavy_library(tmp_path: Path) -> None:
    """A CSV is read by the hand tokenizer: no polars; no server: no aiohttp."""
    shutil.copy(REPO / "inputs" / "example.csv", tmp_path / "example.csv")
    assert _loaded("validate", str(tmp_path / "example.csv")) == []


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_every_public_name_of_a_lazy_package_resolves(name: str) -> None:
    """Each name of ``__all__`` has a home, and importing it from there gives the name."""
    package = importlib.import_module(name)
    homes: dict[str, str] = package._HOMES
    assert sorted(homes) == sorted(package.__all__)
    for public in package.__all__:
        assert getattr(package, public) is getattr(importlib.import_module(homes[public]), public)


def test_an_unknown_name_is_an_attribute_error() -> None:
    import batch.api

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        batch.api.Nope  # noqa: B018 - the access is the test
