"""Stage 3 of the data flow: a manifest's families run against a client and a ledger.

``runner`` (the ``Runner``: phases, the family chain, the action steps) with ``state`` (the
one state its steps share), ``identity`` (the create step and which case is a family's),
``plan`` (every decision about a family), ``validate`` (the one validation pass), ``revert``
(undoing a run), ``pool`` (the bounded worker pool), ``progress`` and ``summary``.
"""

from typing import TYPE_CHECKING

from batch.lazy import loader

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


__getattr__ = loader(__name__, _HOMES, globals())
