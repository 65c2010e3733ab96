"""Stage 3 of the data flow: a manifest's families run against a client and a ledger.

``runner`` (the ``Runner``: phases, the family chain, the action steps) with ``state`` (the
one state its steps share), ``identity`` (the create step and which case is a family's),
``plan`` (every decision about a family), ``validate`` (the one validation pass), ``revert``
(undoing a run), ``pool`` (the bounded worker pool), ``progress`` and ``summary``.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batch.run.runner import run_manifest
    from batch.run.summary import RunOptions, RunSummary

__all__ = ["RunOptions", "RunSummary", "run_manifest"]

#: Where each public name lives: imported on first use, so that a command loads only the
#: modules it needs.
_HOMES = {
    "run_manifest": "batch.run.runner",
    "RunOptions": "batch.run.summary",
    "RunSummary": "batch.run.summary",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
