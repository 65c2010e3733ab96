"""emg-batch: bulk, rate-limited, resumable case work on Illumina Emedgene.

The command line (``emg-batch``) is a thin layer over these names::

    manifest = read_manifest("cases.csv")
    with Ledger.open("cases.ledger.sqlite") as ledger:
        ledger.lock()
        async with Client(host, credentials=Credentials.from_env(), rate=10) as client:
            summary = await run_manifest(manifest, client=client, ledger=ledger)
"""

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


def __getattr__(name: str) -> str:
    """``batch.__version__``, read from the installed distribution."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import version

    return version("emg-batch")
