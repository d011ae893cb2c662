"""Bearer-token authentication of the admin API (tokens compared in constant time)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from app.core.deps import SettingsDep
from app.core.errors import Unauthorized


def require_admin(request: Request, settings: SettingsDep) -> None:
    """Accepts the request only with `Authorization: Bearer <one of CONNECTOR_ADMIN_TOKENS>`."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    presented = token.strip().encode()
    matched = False
    for candidate in settings.admin_tokens:
        # Compare against every token so timing does not reveal which one (or how many) matched.
        matched |= hmac.compare_digest(presented, candidate.get_secret_value().encode())
    if not matched:
        raise Unauthorized("invalid bearer token")


AdminDep = Annotated[None, Depends(require_admin)]
