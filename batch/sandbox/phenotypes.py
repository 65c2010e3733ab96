"""The tenant's HPO terms: the phenotype search, and phenotypes as the case object shows them.

Emedgene names a term ``phenotypes/EMG_PHENOTYPE_<7 digits>`` where HPO says ``HP:<7 digits>``
(the digits are the same). The terms come from the fixture (``phenotypes``); a term a create
body names that the list does not know is still shown, under its HPO id.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from typing import Any

JsonObj = dict[str, Any]

PREFIX = "phenotypes/"
_DIGITS = re.compile(r"(?:HP:|(?:phenotypes/)?EMG_PHENOTYPE_)(\d{7})", re.IGNORECASE)
_ROOT = {"hpo_id": "HP:0000118", "name": "Phenotypic abnormality"}
#: Hits of one search answer at most (the total counts them all).
SEARCH_MAX = 20


def emg_key(digits: str) -> str:
    """``EMG_PHENOTYPE_<digits>``."""
    return f"EMG_PHENOTYPE_{digits}"


def digits_of(term: str) -> str | None:
    """The 7 digits of an HPO id or an Emedgene phenotype id, else None."""
    found = _DIGITS.fullmatch(term.strip())
    return found.group(1) if found else None


@dataclass(frozen=True, slots=True)
class Term:
    """One HPO term of the tenant."""

    digits: str
    name: str
    synonyms: tuple[str, ...]
    is_a: tuple[str, ...]
    depth: int
    category: tuple[str, str]  # (digits, name)

    @property
    def emg_id(self) -> str:
        """``phenotypes/EMG_PHENOTYPE_<digits>``, the id on patients and in search hits."""
        return PREFIX + emg_key(self.digits)

    def hit(self, match: str) -> JsonObj:
        """One search hit."""
        return {"id": self.emg_id, "name": self.name, "match": match}


def _term(raw: JsonObj) -> Term:
    category = raw.get("category") or _ROOT
    return Term(digits=digits_of(str(raw["hpo_id"])) or "0000000", name=str(raw["name"]),
                synonyms=tuple(raw.get("synonyms") or ()), is_a=tuple(raw.get("is_a") or ()),
                depth=int(raw.get("depth", 2)),
                category=(digits_of(str(category["hpo_id"])) or "0000118", str(category["name"])))


def _unknown(digits: str, name: str | None) -> Term:
    """A term the list does not know: shown under its HPO id (or the name it was sent with)."""
    return Term(digits=digits, name=name or f"HP:{digits}", synonyms=(), is_a=(), depth=1,
                category=("0000118", _ROOT["name"]))


class Phenotypes:
    """The HPO terms of one sandbox, by digits and by lower-cased name."""

    def __init__(self, raw: list[JsonObj]) -> None:
        self.terms = [_term(r) for r in raw]
        self.by_digits = {t.digits: t for t in self.terms}
        self.by_name = {t.name.lower(): t for t in self.terms}

    def search(self, query: str) -> tuple[int, list[JsonObj]]:
        """``(total, hits)``: one hit for a known id; name matches (exact first) otherwise."""
        query = query.strip()
        digits = digits_of(query)
        if digits is not None:
            term = self.by_digits.get(digits)
            return (1, [term.hit(query)]) if term else (0, [])
        if not query:
            return 0, []
        hits = [h for t in self.terms if (h := _name_hit(t, query.lower())) is not None]
        hits.sort(key=lambda h: h["name"].lower() != query.lower())
        return len(hits), hits[:SEARCH_MAX]

    def resolve(self, sent: Any) -> Term:
        """The term a create body's phenotype names (by id, else by name)."""
        sent = sent if isinstance(sent, dict) else {}
        name = sent.get("name") if isinstance(sent.get("name"), str) else None
        digits = digits_of(sent["id"]) if isinstance(sent.get("id"), str) else None
        if digits is not None:
            return self.by_digits.get(digits) or _unknown(digits, name)
        known = self.by_name.get((name or "").lower())
        if known is not None:
            return known
        # A name the list does not know: a stable id of its own, in a range HPO does not use.
        return _unknown(f"9{zlib.crc32((name or '').lower().encode()) % 1_000_000:06d}", name)


def _name_hit(term: Term, query: str) -> JsonObj | None:
    for text in (term.name, *term.synonyms):
        if query in text.lower():
            return term.hit(text)
    return None


def record(term: Term) -> JsonObj:
    """The full phenotype record of the case object's ``phenotypes[]``."""
    key = emg_key(term.digits)
    category = {"id": PREFIX + emg_key(term.category[0]), "name": term.category[1]}
    hpo = {"categories": [category], "depth": term.depth, "hpo_id": f"HP:{term.digits}",
           "id": key, "is_a": list(term.is_a), "name": term.name, "synonym": list(term.synonyms),
           "unique_id": f"hpo:{term.digits}", "xref": []}
    return {"_id": PREFIX + key, "_key": key, "_rev": _rev(key), "category_id": category["id"],
            "category_name": category["name"], "category_root": term.digits == term.category[0],
            "depth": term.depth, "hpo_id": f"HP:{term.digits}", "id": key, "name": term.name,
            "sources": {"hpo": hpo}, "synonym": list(term.synonyms)}


def _rev(key: str) -> str:
    """A document revision in the real record's form (``_hRTZqUq--Y``), stable per term."""
    return "_" + hashlib.sha1(key.encode()).hexdigest()[:10]
