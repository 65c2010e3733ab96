"""What a client counts: requests, answers by status, retries, 429s, logins, ambiguity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ClientStats:
    """Counters for the run summary and the benchmarks."""

    requests: int = 0
    responses: dict[int, int] = field(default_factory=dict)
    retries: int = 0
    rate_limited: int = 0
    logins: int = 0
    ambiguous: int = 0
    retry_budget_left: int = 0
    outage_waits: int = 0

    def count_response(self, status: int) -> None:
        """Record one HTTP answer."""
        self.responses[status] = self.responses.get(status, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "requests": self.requests,
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "logins": self.logins,
            "ambiguous": self.ambiguous,
            "retry_budget_left": self.retry_budget_left,
            "outage_waits": self.outage_waits,
        }
