"""The public surface of `batch` is small, sorted and complete."""

from __future__ import annotations

import batch


def test_all_is_sorted_and_importable() -> None:
    """Every name in __all__ exists; the list is sorted so drift shows in review."""
    assert batch.__all__ == sorted(batch.__all__)
    for name in batch.__all__:
        assert getattr(batch, name) is not None


def test_version_comes_from_the_distribution() -> None:
    """__version__ is the installed distribution's version."""
    assert batch.__version__.count(".") >= 1
