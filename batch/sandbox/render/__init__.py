"""JSON shapes of stored cases, as the API answers them."""

from batch.sandbox.render.case import case_object
from batch.sandbox.render.summary import case_info, case_summary, sandbox_case

__all__ = ["case_info", "case_object", "case_summary", "sandbox_case"]
