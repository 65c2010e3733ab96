"""The declared dependency floors: what CI's second environment pins, and what the code uses.

``.ci/floors.py`` turns every ``>=`` floor of pyproject.toml into a ``name==floor`` constraint;
``.ci/floors`` installs the project with those constraints and runs the suite. These tests
check that the derivation covers every declared dependency, that a dependency without a floor
is refused, and that the dependencies declared are the ones the code imports.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = REPO / "pyproject.toml"


def _load_floors() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_floors", REPO / ".ci" / "floors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


floors = _load_floors()


def _project() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def _declared() -> dict[str, str]:
    """Every declared requirement by its normalised name (runtime and optional groups)."""
    project = _project()["project"]
    found = list(project["dependencies"])
    for group in project["optional-dependencies"].values():
        found.extend(group)
    return {floors.canonical(re.split(r"[\s\[<>=!~;]", text, maxsplit=1)[0]): text
            for text in found}


def _pins(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lines:
        name, _, rest = line.partition("==")
        pins[floors.canonical(name)] = rest
    return pins


def test_every_declared_dependency_is_pinned_to_its_floor() -> None:
    declared = _declared()
    pins = _pins(floors.constraints(_project()))
    assert sorted(pins) == sorted(declared)
    for name, requirement in declared.items():
        floor = re.search(r">=\s*([0-9][^,;\s]*)", requirement)
        assert floor is not None, f"{requirement!r} declares no '>=' floor"
        version, _, marker = pins[name].partition("; ")
        assert version == floor[1], name
        assert marker == requirement.partition(";")[2].strip(), name


def test_a_platform_marker_is_kept() -> None:
    project = {"project": {"dependencies": ["uvloop>=0.19; sys_platform != 'win32'",
                                            "Rich[jupyter] >= 13.0"]}}
    assert floors.constraints(project) == ["Rich==13.0", "uvloop==0.19; sys_platform != 'win32'"]


def test_the_highest_floor_wins_when_a_name_is_declared_twice() -> None:
    project = {"project": {"dependencies": ["click>=8.1"],
                           "optional-dependencies": {"test": ["Click>=8.2.0"]}}}
    assert floors.constraints(project) == ["Click==8.2.0"]


@pytest.mark.parametrize("requirement", ["aiohttp", "aiohttp<4", "aiohttp>3.9", "aiohttp==3.9",
                                         "aiohttp>=3.9,>=3.10", "@ nonsense"])
def test_a_requirement_without_a_single_floor_is_refused(requirement: str) -> None:
    with pytest.raises(floors.NoFloor):
        floors.constraints({"project": {"dependencies": [requirement]}})


def test_an_upper_bound_beside_the_floor_is_allowed() -> None:
    project = {"project": {"dependencies": ["multidict>=6.0,<7"]}}
    assert floors.constraints(project) == ["multidict==6.0"]


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / ".ci" / "floors.py"), *args],
                          capture_output=True, text=True, check=False, timeout=60)


def test_the_script_prints_the_constraints_of_the_pyproject() -> None:
    done = _script(str(PYPROJECT))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == floors.constraints(_project())


def test_the_script_names_a_dependency_without_a_floor(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\ndependencies = ["orjson>=3.9", "rich"]\n', encoding="utf-8")
    done = _script(str(path))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"floors: {path}: 'rich' declares no single '>=' floor\n"


# ------------------------------------------------------------------ declared against imported


def _third_party_imports(folder: Path) -> set[str]:
    """Top-level modules that the files under *folder* import or look up by name
    (``importlib.util.find_spec("uvloop")``), less the standard library and this project's
    own modules (a benchmark imports its neighbours by their bare names)."""
    found: set[str] = set()
    files = list(folder.rglob("*.py"))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Call) and _is_lookup(node):
                found.add(str(node.args[0].value).split(".")[0])  # type: ignore[attr-defined]
    local = {"batch", "tests", "__future__", *(path.stem for path in files)}
    return found - set(sys.stdlib_module_names) - local


def _is_lookup(node: ast.Call) -> bool:
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    return (name in {"find_spec", "import_module"} and bool(node.args)
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))


def _distributions(modules: set[str]) -> set[str]:
    owners = importlib.metadata.packages_distributions()
    missing = sorted(module for module in modules if module not in owners)
    assert not missing, f"imported but installed by no distribution: {missing}"
    return {floors.canonical(owners[module][0]) for module in modules}


def _runtime() -> set[str]:
    return {floors.canonical(re.split(r"[\s\[<>=!~;]", text, maxsplit=1)[0])
            for text in _project()["project"]["dependencies"]}


@pytest.mark.slow
def test_the_runtime_dependencies_are_exactly_what_the_package_imports() -> None:
    used = _distributions(_third_party_imports(REPO / "batch"))
    runtime = _runtime()
    assert sorted(used - runtime) == [], "imported by batch/ but not declared"
    assert sorted(runtime - used) == [], "declared but imported nowhere in batch/"


@pytest.mark.slow
def test_what_the_tests_import_is_declared() -> None:
    used = _distributions(_third_party_imports(REPO / "tests"))
    assert sorted(used - set(_declared())) == []
