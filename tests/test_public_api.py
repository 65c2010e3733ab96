"""The public surface of `batch` is small, sorted and complete."""

from __future__ import annotations

from importlib.metadata import version

import batch

EXPECTED = [
    "AmbiguousCreate", "ApiError", "AuthError", "BatchError", "Client", "Credentials", "Family",
    "Ledger", "LedgerError", "Manifest", "ManifestError", "PermanentError", "Problem",
    "RetryPolicy", "RunOptions", "RunSummary", "State", "TransientError", "UsageError",
    "read_manifest", "run_manifest",
]


def test_all_is_sorted_and_complete() -> None:
    """__all__ names exactly the public names, sorted, and each is defined in the package
    (imported on first use)."""
    assert batch.__all__ == sorted(batch.__all__)
    assert batch.__all__ == EXPECTED
    missing = [name for name in batch.__all__ if not hasattr(batch, name)]
    assert missing == []


def test_version_comes_from_the_distribution() -> None:
    """__version__ is the installed distribution's version."""
    assert batch.__version__ == version("emg-batch")
