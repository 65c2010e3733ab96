"""Public names of a package imported on first use, so that a command loads only the modules
it needs (``emg-batch --help`` never imports aiohttp or polars; see tests/test_startup.py)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def loader(package: str, homes: Mapping[str, str],
           namespace: dict[str, Any]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of *package*: each name of *homes* imported from its module
    on first use, then kept in *namespace* (the package's globals) so it is looked up once."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        namespace[name] = value
        return value

    return __getattr__
