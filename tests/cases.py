"""Cases made straight through the client, for tests that need some on the server."""

from __future__ import annotations

from typing import Any

from batch.api import Client


def minimal_payload(sample: str, *, gender: str = "Female") -> dict[str, Any]:
    """The smallest valid create body, its proband's sample named *sample*."""
    proband = {"id": "proband", "gender": gender, "fastq_sample": sample}
    return {"test_data": {"type": "Exome", "sample_type": "fastq",
                          "patients": {"proband": proband}}}


async def create_minimal(client: Client, sample: str, *, gender: str = "Female") -> str:
    """Create one minimal case; its name."""
    created = await client.create_case(minimal_payload(sample, gender=gender))
    assert created is not None
    return created.name
