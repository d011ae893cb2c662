"""DMSA credentials and the per-call request accounting the caller passes in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProcoreCredentials:
    """A DMSA client id and secret; the secret never appears in repr or str.

    `login_url`/`api_url` bind the pair to its Procore environment's hosts (None: the client's
    defaults), so a secret is only ever sent to the login host of the environment it belongs to.
    """

    client_id: str
    client_secret: str = field(repr=False)
    login_url: str | None = None
    api_url: str | None = None

    def cache_key(self) -> tuple[str, str]:
        """Returns a key that changes when the id, the secret or the login host changes."""
        digest = hashlib.sha256(
            f"{self.login_url or ''}\n{self.client_secret}".encode()
        ).hexdigest()[:16]
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
