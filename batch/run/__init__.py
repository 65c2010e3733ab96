"""Stage 3 of the data flow: a manifest's families run against a client and a ledger.

``runner`` (phases and the family chain) with ``plan`` (every decision about a family),
``validate`` (the one validation pass), ``create`` (the create step), ``reconcile`` (finding the
case of a lost create), ``actions`` (assign, preset group, status), ``context`` (what the steps
share), ``pool`` (the bounded worker pool), ``progress`` and ``summary``.
"""

from batch.run.runner import run_manifest
from batch.run.summary import RunOptions, RunSummary

__all__ = ["RunOptions", "RunSummary", "run_manifest"]
