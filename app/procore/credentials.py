"""DMSA credentials and the per-call request accounting the caller passes in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProcoreCredentials:
    """A DMSA client id and secret; the secret never appears in repr or str."""

    client_id: str
    client_secret: str = field(repr=False)

    def cache_key(self) -> tuple[str, str]:
        """Returns a key that changes when either the id or the secret changes."""
        digest = hashlib.sha256(self.client_secret.encode()).hexdigest()[:16]
        return (self.client_id, digest)


@dataclass
class RequestStats:
    """What a call cost: HTTP requests sent (every attempt), token requests, answers by status."""

    requests: int = 0
    token_requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    network_errors: int = 0

    def record_status(self, status: int) -> None:
        """Counts one API answer with the given status."""
        self.statuses[status] = self.statuses.get(status, 0) + 1
