"""The data a sandbox answers look-ups from: a conformance-format fixture file.

Without one, the sandbox loads its demo fixture (``demo_fixture.json`` next to this module):
storages ``1`` (``s3``, "sandbox-bucket") and ``2`` (``basespace``, "Sandbox BaseSpace") with
a small tree (project ``1001`` "Demo-Project" holding biosamples ``DEMO-01`` to ``DEMO-03``,
each with one dataset of paired FASTQ files), one existing sample ``DEMO-EX01``, users
``geneticist@example.com`` (id 11), ``analyst@example.com`` (12) and
``director@example.com`` (13), gene lists 101 to 110 (some with genes) and a small HPO list
(``phenotypes``) that the phenotype search and the case object's phenotype records read.
A fixture without ``phenotypes`` uses the demo list: every tenant knows the HPO.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JsonObj = dict[str, Any]

DEFAULT_CASE_NAME_START = 100000001
DEFAULT_PAGE_SIZE_MAX = 100


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """A canned answer: status and body (a JSON object, or plain text when a string)."""

    status: int
    body: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Fixture:
    """Everything the sandbox reads but never changes."""

    token_seed: str | None = None
    token_type: str = "bearer"
    case_name_start: int = DEFAULT_CASE_NAME_START
    fs_page_size_max: int = DEFAULT_PAGE_SIZE_MAX
    storages: dict[str, JsonObj] = field(default_factory=dict)
    fs: dict[str, dict[str, list[JsonObj]]] = field(default_factory=dict)
    samples: list[JsonObj] = field(default_factory=list)
    users: list[JsonObj] = field(default_factory=list)
    gene_lists: frozenset[int] | None = None
    #: Gene list id → ``{"name", "genes"}`` (names as given, genes a list of symbols).
    gene_list_info: dict[int, JsonObj] = field(default_factory=dict)
    #: HPO terms: ``{"hpo_id", "name", "synonyms"?, "category"?, "is_a"?, "depth"?}``.
    phenotypes: list[JsonObj] = field(default_factory=list)
    dry_run_errors: dict[str, ErrorAnswer] = field(default_factory=dict)
    create_errors: dict[str, ErrorAnswer] = field(default_factory=dict)


def _errors(raw: Any) -> dict[str, ErrorAnswer]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): ErrorAnswer(int(v["status"]), v.get("body")) for k, v in raw.items()}


def _gene_list_ids(raw: Any) -> frozenset[int] | None:
    """Accept a list of ids, a list of ``{"id"}`` objects or a map keyed by id."""
    if raw is None:
        return None
    items = raw.keys() if isinstance(raw, dict) else raw
    ids = set()
    for item in items:
        ids.add(int(item["id"] if isinstance(item, dict) else item))
    return frozenset(ids)


def _gene_list_info(raw: Any) -> dict[int, JsonObj]:
    """Names and genes of gene lists given as ``{"id", "name", "genes"?}`` objects."""
    if isinstance(raw, dict):
        raw = [{"id": k, **v} if isinstance(v, dict) else {"id": k} for k, v in raw.items()]
    if not isinstance(raw, list):
        return {}
    return {int(item["id"]): {"name": str(item.get("name") or f"Gene list {item['id']}"),
                              "genes": list(item.get("genes") or [])}
            for item in raw if isinstance(item, dict)}


def _phenotypes(raw: JsonObj, path: Path) -> list[JsonObj]:
    if "phenotypes" in raw:
        return list(raw["phenotypes"] or [])
    if path == demo_fixture_path():
        return []
    return default_fixture().phenotypes


class FixtureError(ValueError):
    """A fixture file that cannot be used: not JSON, not an object, values of the wrong type."""


def load_fixture(path: Path) -> Fixture:
    """Read a conformance-format fixture file; ``FixtureError`` says what is wrong with it."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FixtureError(f"{path}: not a JSON file ({exc})") from None
    except OSError as exc:
        raise FixtureError(f"{path}: cannot be read ({exc.strerror})") from None
    if not isinstance(raw, dict):
        raise FixtureError(f"{path}: a fixture is a JSON object ({{\"users\": [...], ...}}), "
                           f"not {_kind(raw)}")
    try:
        fixture = _fixture(raw, Path(path))
        _check_shapes(fixture)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise FixtureError(f"{path}: a value of the wrong type ({type(exc).__name__}: {exc}); "
                           "see conformance/official-cli-36/fixture.json for the format") from None
    return fixture


def _kind(value: object) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "true or false"}.get(type(value), "null")


def _check_shapes(fixture: Fixture) -> None:
    """The entries the sandbox's answers read: objects, with ids that are numbers."""
    for name, items in (("users", fixture.users), ("samples", fixture.samples),
                        ("phenotypes", fixture.phenotypes),
                        ("storages", list(fixture.storages.values()))):
        for item in items:
            if not isinstance(item, dict):
                raise TypeError(f"each of {name} must be an object, not {_kind(item)}")
    for user in fixture.users:
        int(user["id"])
        if not isinstance(user.get("email"), str):
            raise TypeError(f"user {user['id']}: email must be a string")


def _fixture(raw: JsonObj, path: Path) -> Fixture:
    login = raw.get("login") or {}
    return Fixture(
        token_seed=login.get("token_seed"),
        token_type=login.get("token_type", "bearer"),
        case_name_start=int(raw.get("case_name_start", DEFAULT_CASE_NAME_START)),
        fs_page_size_max=int(raw.get("fs_page_size_max", DEFAULT_PAGE_SIZE_MAX)),
        storages={str(k): v for k, v in (raw.get("storages") or {}).items()},
        fs={str(k): v for k, v in (raw.get("fs") or {}).items()},
        samples=list(raw.get("samples") or []),
        users=list(raw.get("users") or []),
        gene_lists=_gene_list_ids(raw.get("gene_lists")),
        gene_list_info=_gene_list_info(raw.get("gene_lists")),
        phenotypes=_phenotypes(raw, path),
        dry_run_errors=_errors(raw.get("dry_run_errors")),
        create_errors=_errors(raw.get("create_errors")),
    )


def demo_fixture_path() -> Path:
    """Path of the demo fixture the sandbox uses when given none."""
    return Path(__file__).with_name("demo_fixture.json")


@functools.cache
def default_fixture() -> Fixture:
    """The demo data used when no fixture file is given (read once; it never changes)."""
    return load_fixture(demo_fixture_path())
