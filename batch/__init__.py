"""emg-batch: bulk, rate-limited, resumable case work on Illumina Emedgene.

The command line (``emg-batch``) is a thin layer over these names::

    manifest = read_manifest("cases.csv")
    with Ledger.open("cases.ledger.sqlite") as ledger:
        ledger.lock()
        async with Client(host, credentials=Credentials.from_env(), rate=10) as client:
            summary = await run_manifest(manifest, client=client, ledger=ledger)
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batch.api import Client, Credentials, RetryPolicy
    from batch.errors import (
        AmbiguousCreate,
        ApiError,
        AuthError,
        BatchError,
        LedgerError,
        ManifestError,
        PermanentError,
        TransientError,
        UsageError,
    )
    from batch.ledger import Ledger, State
    from batch.manifest import Family, Manifest, Problem, read_manifest
    from batch.run import RunOptions, RunSummary, run_manifest

__all__ = [
    "AmbiguousCreate",
    "ApiError",
    "AuthError",
    "BatchError",
    "Client",
    "Credentials",
    "Family",
    "Ledger",
    "LedgerError",
    "Manifest",
    "ManifestError",
    "PermanentError",
    "Problem",
    "RetryPolicy",
    "RunOptions",
    "RunSummary",
    "State",
    "TransientError",
    "UsageError",
    "read_manifest",
    "run_manifest",
]


#: Where each public name lives: imported on first use, so that ``import batch.errors`` or a
#: light command (``emg-batch --help``) never loads aiohttp or polars.
_HOMES = {
    **dict.fromkeys(("Client", "Credentials", "RetryPolicy"), "batch.api"),
    **dict.fromkeys(("AmbiguousCreate", "ApiError", "AuthError", "BatchError", "LedgerError",
                     "ManifestError", "PermanentError", "TransientError", "UsageError"),
                    "batch.errors"),
    **dict.fromkeys(("Ledger", "State"), "batch.ledger"),
    **dict.fromkeys(("Family", "Manifest", "Problem", "read_manifest"), "batch.manifest"),
    **dict.fromkeys(("RunOptions", "RunSummary", "run_manifest"), "batch.run"),
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use; ``batch.__version__``, read from
    the installed distribution."""
    if name == "__version__":
        from importlib.metadata import version

        return version("emg-batch")
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
