"""Bearer-token authentication of the admin API (tokens compared in constant time)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.errors import Unauthorized
from app.deps import SettingsDep

# auto_error=False: a missing token is answered by our own 401 in the common error shape.
bearer = HTTPBearer(auto_error=False, description="one of CONNECTOR_ADMIN_TOKENS")


def _digest(token: str) -> bytes:
    # Hashing first makes every comparison the same length, so not even a token's length leaks.
    return hashlib.sha256(token.encode()).digest()


def token_matches(presented: str, accepted: list[str]) -> bool:
    """Tells whether `presented` is one of `accepted`, in time independent of which (or none)."""
    digest = _digest(presented)
    matched = False
    for candidate in accepted:
        matched |= hmac.compare_digest(digest, _digest(candidate))
    return matched


def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Accepts the request only with `Authorization: Bearer <one of CONNECTOR_ADMIN_TOKENS>`."""
    if credentials is None or not credentials.credentials.strip():
        raise Unauthorized("missing bearer token")
    accepted = [token.get_secret_value() for token in settings.admin_tokens]
    if not token_matches(credentials.credentials.strip(), accepted):
        raise Unauthorized("invalid bearer token")


AdminDep = Annotated[None, Depends(require_admin)]
