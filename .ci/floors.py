"""The declared floors of pyproject.toml as a pip constraints file.

Every requirement of ``[project] dependencies`` and of each ``[project.optional-dependencies]``
group becomes ``name==floor``, the floor being the version of its ``>=`` clause; an environment
marker is kept, so that a dependency for some platforms stays so. A requirement without a
``>=`` floor is an error: every dependency declares the oldest release it is known to work with,
and CI installs exactly that release to prove it.

    python .ci/floors.py [pyproject.toml] > constraints.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# name [extras] specifiers ; marker   (PEP 508, without URL requirements)
_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*"
    r"(?P<specs>[^;]*?)\s*(?:;\s*(?P<marker>.+?))?\s*$"
)
_FLOOR = re.compile(r"^>=\s*(?P<version>[0-9][A-Za-z0-9.+!-]*)$")


class NoFloor(ValueError):
    """A requirement that does not declare a ``>=`` floor."""


def canonical(name: str) -> str:
    """The normalised form of a distribution name (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: dict[str, Any]) -> Iterator[str]:
    """Every declared requirement: the runtime ones, then each optional group's."""
    project = pyproject.get("project", {})
    yield from project.get("dependencies", [])
    for group in project.get("optional-dependencies", {}).values():
        yield from group


def floor(requirement: str) -> tuple[str, str, str | None]:
    """(name, floor version, marker or None) of one requirement string."""
    match = _REQUIREMENT.match(requirement)
    if match is None:
        raise NoFloor(f"unreadable requirement {requirement!r}")
    specs = [spec.strip() for spec in match["specs"].split(",") if spec.strip()]
    floors = [found["version"] for spec in specs if (found := _FLOOR.match(spec))]
    if len(floors) != 1:
        raise NoFloor(f"{requirement!r} declares no single '>=' floor")
    return match["name"], floors[0], match["marker"]


def constraints(pyproject: dict[str, Any]) -> list[str]:
    """The constraint lines pinning every declared requirement to its floor (each name once:
    the highest floor wins when a name is declared twice)."""
    pinned: dict[str, tuple[str, str, str | None]] = {}
    for requirement in requirements(pyproject):
        name, version, marker = floor(requirement)
        key = canonical(name)
        if key not in pinned or _newer(version, pinned[key][1]):
            pinned[key] = (name, version, marker)
    return [_line(*pinned[key]) for key in sorted(pinned)]


def _newer(a: str, b: str) -> bool:
    return _release(a) > _release(b)


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0]))


def _line(name: str, version: str, marker: str | None) -> str:
    return f"{name}=={version}" + (f"; {marker}" if marker else "")


def main(argv: Iterable[str]) -> int:
    args = list(argv)
    path = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        lines = constraints(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, NoFloor) as exc:
        sys.stderr.write(f"floors: {path}: {exc}\n")
        return 2
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
