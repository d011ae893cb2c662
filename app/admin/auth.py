"""Who is calling, and what their role lets them do: named bearer tokens with roles.

Tokens are compared in constant time. The API's bearer check runs in `BearerGate`, before
any body is read, so a bad token with a huge or malformed body is a 401, never a 400 or 413.
The console (app/console) signs in with the same tokens and checks the same permissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from app.audit.schemas import Actor, Source
from app.core.admin_tokens import AdminRole, bearer_credentials, find_token
from app.core.errors import Forbidden, Unauthorized
from app.core.http import error_response
from app.core.settings import Settings

# Documents the scheme in OpenAPI; the check itself is BearerGate / current_principal.
bearer = HTTPBearer(auto_error=False, description="one of CONNECTOR_ADMIN_TOKENS")
API_PREFIX = "/admin/"


class Permission(StrEnum):
    """What a request does, as far as roles are concerned (SPEC section 4)."""

    read = "read"  # every GET
    operate = "operate"  # trigger and cancel syncs, pause and resume
    configure = "configure"  # schedule, streams, destination, signing secret, credentials
    uninstall = "uninstall"  # uninstall and purge


GRANTS: dict[AdminRole, frozenset[Permission]] = {
    AdminRole.viewer: frozenset({Permission.read}),
    AdminRole.operator: frozenset({Permission.read, Permission.operate}),
    AdminRole.admin: frozenset(Permission),
}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the token's name and role."""

    name: str
    role: AdminRole

    def may(self, permission: Permission) -> bool:
        """Whether this caller's role grants `permission`."""
        return permission in GRANTS[self.role]

    def require(self, permission: Permission) -> None:
        """Raises Forbidden (403) unless the role grants `permission`."""
        if not self.may(permission):
            raise Forbidden(
                f"the {self.role.value} role may not {permission.value} "
                f"(token {self.name!r}); ask an admin",
                details=[{"role": self.role.value, "permission": permission.value}],
            )


def authenticate_header(settings: Settings, authorization: str | None) -> Principal:
    """The caller of an `Authorization: Bearer ...` header, or Unauthorized."""
    presented = bearer_credentials(authorization)
    if presented is None:
        raise Unauthorized("missing bearer token")
    entry = find_token(presented, settings.admin_tokens)
    if entry is None:
        raise Unauthorized("invalid bearer token")
    return Principal(entry.name, entry.role)


class BearerGate:
    """Authenticates every request under /admin/ before the body is read or parsed.

    The principal is left in `scope["state"]` for the routes; a refused request never reaches
    the body size limit or FastAPI's body parsing.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            headers = dict(scope.get("headers") or [])
            raw = headers.get(b"authorization")
            try:
                principal = authenticate_header(
                    self.settings, raw.decode("latin-1") if raw is not None else None
                )
            except Unauthorized as exc:
                response = error_response(exc)
                response.headers["Connection"] = "close"
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def current_principal(request: Request) -> Principal:
    """The caller BearerGate authenticated (or, without the gate, the header's)."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal):
        return principal
    settings: Settings = request.app.state.runtime.settings
    principal = authenticate_header(settings, request.headers.get("authorization"))
    request.state.principal = principal
    return principal


def client_ip(request: Request) -> str | None:
    """The caller's address as the server saw it (the proxy's, unless uvicorn trusts it)."""
    return request.client.host if request.client else None


def api_actor(request: Request, principal: Principal) -> Actor:
    """The audit trail's view of an API caller."""
    return Actor(
        name=principal.name, role=principal.role.value, source=Source.api, ip=client_ip(request)
    )


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def requires(permission: Permission) -> object:
    """A route dependency refusing (403) callers whose role lacks `permission`."""

    def check(principal: PrincipalDep) -> Principal:
        principal.require(permission)
        return principal

    return Depends(check)


# The route parameters that check a role, shared by every admin router.
Reader = Annotated[Principal, requires(Permission.read)]
Configurer = Annotated[Principal, requires(Permission.configure)]
