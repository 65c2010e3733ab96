"""Where the test data lives: inside the repository, so the suite needs nothing beside it.

``data/conformance/official-cli-36`` is the recorded corpus of Illumina's official batch CLI
v36 (its README says what each file holds); ``data/real-responses`` holds a real case object of
a production tenant (anonymised) and what Emedgene's own batch script sends.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
CONFORMANCE_DIR = DATA / "conformance" / "official-cli-36"
FIXTURE = CONFORMANCE_DIR / "fixture.json"
REAL_RESPONSES = DATA / "real-responses"
