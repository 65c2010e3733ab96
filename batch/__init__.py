"""emg-batch: bulk, rate-limited, resumable case work on Illumina Emedgene."""

from batch.errors import (
    ApiError,
    BatchError,
    LedgerError,
    ManifestError,
    UsageError,
)

__all__ = [
    "ApiError",
    "BatchError",
    "LedgerError",
    "ManifestError",
    "UsageError",
]
