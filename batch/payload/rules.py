"""The official CLI's value rules (BEHAVIOUR §5 "Rules for the value checks") and vocabulary.

Integers, true/false, dates and lengths are judged exactly as the official CLI's JavaScript
judges them; file types come from name suffixes (§4.4 of the API reference).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from batch.manifest.model import ID_DIGITS

FASTQ_SUFFIXES = (".fastq.gz", ".fq.gz", ".bam", ".cram")
VCF_SUFFIXES = (".vcf.gz", ".vcf", "gvcf.gz", "gvcf")
BAM_SUFFIXES = (".bam", ".cram")
VIZ_SUFFIXES = (".tn.bw", ".baf.bw", ".roh.bed", ".target.counts.bw", ".metrics.tar.gz")
RELATIONS = ("proband", "mother", "father", "sibling")
GENDERS = {
    "m": "Male",
    "male": "Male",
    "f": "Female",
    "female": "Female",
    "u": "Unknown",
    "unknown": "Unknown",
    "": "Unknown",
}
STATUSES = ("delivered", "finalized", "trash")


_DATE = re.compile(r"^([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})$")


def is_integer(cell: str) -> bool:
    """Official integer rule: digits only, after trimming."""
    value = cell.strip()
    return value.isascii() and value.isdigit()  # ^[0-9]+$, as JavaScript's ^\d+$ means


#: Clinical Notes: at most this many characters as JavaScript counts them (official rule).
NOTES_LIMIT = 4000
#: Phenotypes and Phenotypes Id: at most this many items each (official rule).
PHENOTYPE_LIMIT = 100
#: Case-level columns: read from the proband row only; a member row whose value differs is
#: warned of.
FAMILY_COLUMNS = ("Case Type", "Execute Now", "Gene List Id", "Kit Id", "Intersect Bed Id",
                  "Boost Genes", "Due Date", "Label Id", "Opt In", "Selected Preset",
                  "Clinical Notes")


def is_id(cell: str) -> bool:
    """An id the client can send (storage, gene list, kit, bed, label, preset gene list): the
    official integer rule, and at most ``ID_DIGITS`` digits."""
    return is_integer(cell) and len(cell.strip()) <= ID_DIGITS


def is_bool(cell: str) -> bool:
    """``true``/``false`` in any case."""
    return cell.strip().lower() in ("true", "false")


def is_date(cell: str) -> bool:
    """The official date rule: ``YYYY-M-D`` with ``-`` or ``/``, calendar-checked."""
    return _date_parts(cell) is not None


def parse_date(cell: str) -> dt.date | None:
    """The date of a cell that passes :func:`is_date`; None otherwise, and for year 0, which
    the official rule accepts but no Python date can hold (it is never in the future)."""
    parts = _date_parts(cell)
    if parts is None or parts[0] < 1:
        return None
    return dt.date(*parts)


def _date_parts(cell: str) -> tuple[int, int, int] | None:
    text = cell.strip()
    if len(text) == 10 and text[4] == text[7] == "-" and text.isascii():
        # YYYY-MM-DD, the usual spelling, without the regular expression
        year_text, month_text, day_text = text[:4], text[5:7], text[8:]
        if not (year_text.isdigit() and month_text.isdigit() and day_text.isdigit()):
            return None
        year, month, day = int(year_text), int(month_text), int(day_text)
    else:
        match = _DATE.match(text)
        if match is None:
            return None
        year, month, day = map(int, match.groups())
    if not 1 <= month <= 12 or not 1 <= day <= _month_days(year, month):
        return None
    return year, month, day


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if calendar.isleap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def js_length(text: str) -> int:
    """Length as JavaScript counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def file_type(name: str) -> str | None:
    """``fastq`` or ``vcf`` from a file name's suffix, None when not recognised."""
    if name.endswith(FASTQ_SUFFIXES):
        return "fastq"
    if name.endswith(VCF_SUFFIXES):
        return "vcf"
    return None



def last_segment(path: str) -> str:
    """The part of a path after its last ``/``."""
    return path.rsplit("/", 1)[-1]


def parent_dir(path: str) -> str:
    """The directory of a path, without leading or trailing ``/`` (as the CLI asks it)."""
    return path.rsplit("/", 1)[0].strip("/") if "/" in path else ""
