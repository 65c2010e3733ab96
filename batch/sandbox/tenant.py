"""The organization a sandbox emulates (``tenant.json``): its settings, presets and users' org.

Every case object carries the organization (the real one does, with its presets and settings);
the values are made up, the shape is the real one's.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

JsonObj = dict[str, Any]

#: The presets the real finalized case shows as checked (``checked_presets``).
CHECKED_PRESETS = ("Autosomal Dominant", "CNV >5Mb", "Compound Hets", "De novo", "Homozygous",
                   "Known Pathogenic", "Most Likely", "X-linked Recessive")


@functools.cache
def _organization() -> JsonObj:
    raw: JsonObj = json.loads(Path(__file__).with_name("tenant.json").read_text(encoding="utf-8"))
    raw.pop("$comment", None)
    return raw


def organization() -> JsonObj:
    """The organization object, shared: read it, never change it (answers serialise it as is,
    and a copy per case read would cost more than the rest of the answer)."""
    return _organization()


def organization_id() -> int:
    """The organization's numeric id (``organization_id`` of the legacy users listing)."""
    return int(_organization()["id"])


def alias() -> str:
    """The organization's alias: the first folder of sample directories and BAM paths."""
    return str(_organization()["alias"])
