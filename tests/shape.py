"""Compare a JSON value with a shape document (``tests/data/real-responses/real-case-shape.json``).

A shape node is a JSON type name, a list of nodes (any may match), an object node
(``{"type": "object", "keys": {...}, "optional": [...]}``, or ``"opaque": true``), a map node
(``{"type": "map", "values": node}``) or an array node (``{"type": "array", "items": node}``,
``items`` null when only empty arrays were seen). Paths are written ``$.a.b[].c``.

The real answer is one case: a key it shows only as ``null`` may hold a value elsewhere, a key
of a trio may be absent on a single. ``relax`` adds types a path may also have, ``optional``
names paths that may be missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHAPE_FILE = Path(__file__).parent / "data" / "real-responses" / "real-case-shape.json"


def real_case_shape() -> Any:
    """The shape of the real ``GET /api/test/{case}/`` answer."""
    return json.loads(SHAPE_FILE.read_text(encoding="utf-8"))["shape"]


def type_name(value: Any) -> str:
    """The JSON type of *value*, as shape documents name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class Checker:
    """Collects the differences between a value and a shape."""

    def __init__(self, *, relax: dict[str, set[str]] | None = None,
                 optional: set[str] | None = None, allow_extra: bool = False) -> None:
        self.relax = relax or {}
        self.optional = optional or set()
        self.allow_extra = allow_extra
        self.errors: list[str] = []

    def check(self, node: Any, value: Any, path: str = "$") -> list[str]:
        """Every difference of *value* from *node* (also kept in ``errors``)."""
        if type_name(value) in self.relax.get(path, set()):
            return self.errors
        if isinstance(node, list):
            self._union(node, value, path)
        elif isinstance(node, str):
            if type_name(value) != node:
                self.errors.append(f"{path}: expected {node}, got {type_name(value)}")
        elif node is not None:
            self._composite(node, value, path)
        return self.errors

    def _union(self, nodes: list[Any], value: Any, path: str) -> None:
        for node in nodes:
            trial = Checker(relax=self.relax, optional=self.optional, allow_extra=self.allow_extra)
            if not trial.check(node, value, path):
                return
        self.errors.append(f"{path}: {type_name(value)} matches none of the alternatives")

    def _composite(self, node: dict[str, Any], value: Any, path: str) -> None:
        kind = node["type"]
        if kind == "array":
            if not isinstance(value, list):
                self.errors.append(f"{path}: expected array, got {type_name(value)}")
                return
            for item in value:
                self.check(node["items"], item, path + "[]")
            return
        if not isinstance(value, dict):
            self.errors.append(f"{path}: expected object, got {type_name(value)}")
        elif kind == "map":
            for item in value.values():
                self.check(node["values"], item, f"{path}.*")
        elif not node.get("opaque"):
            self._object(node, value, path)

    def _object(self, node: dict[str, Any], value: dict[str, Any], path: str) -> None:
        optional = set(node.get("optional", []))
        for key, sub in node["keys"].items():
            where = f"{path}.{key}"
            if key in value:
                self.check(sub, value[key], where)
            elif key not in optional and where not in self.optional:
                self.errors.append(f"{path}: missing key {key!r}")
        if not self.allow_extra:
            self.errors += [f"{path}: unexpected key {k!r}" for k in value if k not in node["keys"]]


def mismatches(value: Any, *, relax: dict[str, set[str]] | None = None,
               optional: set[str] | None = None, allow_extra: bool = False) -> list[str]:
    """The differences of *value* from the real case shape."""
    checker = Checker(relax=relax, optional=optional, allow_extra=allow_extra)
    return checker.check(real_case_shape(), value)
