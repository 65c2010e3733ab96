"""Stage 2 of the data flow: every family validated and turned into the create payload, exactly
as the official CLI v36 does it (BEHAVIOUR.md §3 and §5).

``checks`` holds the validation (per family and across families), ``screen`` which families of
a large manifest the checks must see, ``files`` the case's sample type, ``build`` the payload;
``rules`` the value rules; ``resolve`` the look-ups a payload needs from the server
(``Resolver``), ``lookups`` their per-family memo.
"""

from batch.errors import BuildError, ResolveError
from batch.payload.build import build_payload
from batch.payload.checks import check_family, check_manifest_wide
from batch.payload.files import case_sample_type
from batch.payload.lookups import Lookups
from batch.payload.resolve import ApiResolver, CachedResolver, OfflineResolver, Resolver
from batch.payload.rules import file_type, is_bool, is_date, is_integer, js_length, parse_date
from batch.payload.screen import families_to_check

__all__ = [
    "ApiResolver",
    "BuildError",
    "CachedResolver",
    "Lookups",
    "OfflineResolver",
    "ResolveError",
    "Resolver",
    "build_payload",
    "case_sample_type",
    "check_family",
    "check_manifest_wide",
    "families_to_check",
    "file_type",
    "is_bool",
    "is_date",
    "is_integer",
    "js_length",
    "parse_date",
]
