"""What every console page shares: templates, the signed-in caller, forms with CSRF, redirects."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.admin.actions import Caller
from app.admin.auth import GRANTS, Permission, client_ip
from app.audit.schemas import Actor, Source
from app.console import sessions
from app.console.sessions import SessionState, SignedIn
from app.core.database import unit_of_work, utcnow
from app.core.errors import BadRequest, ConnectorError, Forbidden
from app.core.http import http_status
from app.deps import RuntimeDep, SessionDep

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
FORM_LIMIT = 64 * 1024  # the console's forms are a few fields; anything larger is refused


class ConsoleRedirect(Exception):
    """Leaves the page for another (sign-in or expired); JSON callers get a 401 instead."""

    def __init__(self, location: str, *, clear_cookie: bool = False) -> None:
        super().__init__(location)
        self.location = location
        self.clear_cookie = clear_cookie


class ConsolePageError(Exception):
    """A refused or failed console action, shown as a page (the transaction rolls back)."""

    def __init__(self, error: ConnectorError, signed: SignedIn | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.signed = signed


@contextmanager
def as_page(signed: SignedIn | None) -> Iterator[None]:
    """Turns a domain error inside the block into an error page, rolling the change back."""
    try:
        yield
    except ConnectorError as exc:
        raise ConsolePageError(exc, signed) from None


def wants_json(request: Request) -> bool:
    """Whether the caller is the console's script (live progress), not a page load."""
    return request.url.path.endswith(".json")


def redirect_response(request: Request, exc: ConsoleRedirect) -> Response:
    """The answer to a ConsoleRedirect: 303 to the page, or 401 JSON naming it."""
    response: Response
    if wants_json(request):
        body = {"error": {"code": "unauthorized", "message": "signed out", "details": []}}
        response = JSONResponse({**body, "location": exc.location}, status_code=401)
    else:
        response = RedirectResponse(exc.location, status_code=303)
    if exc.clear_cookie:
        response.delete_cookie(sessions.COOKIE, path=sessions.COOKIE_PATH)
    return response


async def signed_in(request: Request, session: SessionDep, rt: RuntimeDep) -> SignedIn:
    """The session of the request's cookie; otherwise off to sign-in or the expired page."""
    cookie = request.cookies.get(sessions.COOKIE)
    state = await sessions.resume(session, rt.settings, cookie)
    if state == SessionState.missing:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise ConsoleRedirect(f"/console/sign-in?next={quote(target, safe='')}")
    if state == SessionState.expired:
        # Its own transaction: the redirect rolls the request's back.
        async with unit_of_work(rt.sessions) as cleanup:
            await sessions.end(cleanup, cookie)
        raise ConsoleRedirect("/console/expired", clear_cookie=True)
    assert isinstance(state, SignedIn)
    return state


SignedInDep = Annotated[SignedIn, Depends(signed_in)]


def console_caller(request: Request, signed: SignedIn) -> Caller:
    """The principal and its audit identity for a console action."""
    principal = signed.principal
    actor = Actor(
        name=principal.name,
        role=principal.role.value,
        source=Source.console,
        ip=client_ip(request),
    )
    return Caller(principal, actor)


async def read_form(request: Request, csrf_expected: str | None) -> dict[str, str]:
    """The fields of a urlencoded form; refuses it without the right CSRF token (403)."""
    body = await request.body()
    if len(body) > FORM_LIMIT:
        raise BadRequest("the form is too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form could not be read") from None
    fields = {name: values[-1] for name, values in parsed.items()}
    if csrf_expected is not None and not sessions.csrf_matches(csrf_expected, fields.get("csrf")):
        raise Forbidden("the form's CSRF token is missing or stale; reload the page and retry")
    return fields


def ago(value: datetime | None) -> str:
    """'3 min ago' style age of a time, for freshness columns."""
    if value is None:
        return "never"
    seconds = (utcnow() - value).total_seconds()
    if seconds < 0:
        return "in " + _span(-seconds)
    return _span(seconds) + " ago"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def when(value: datetime | None) -> str:
    """A UTC time as `2026-11-30 17:05:12Z`."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


templates.env.filters["ago"] = ago
templates.env.filters["when"] = when


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    signed: SignedIn | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Renders a page; signed-in pages get the caller, their grants and the CSRF token."""
    values: dict[str, Any] = {"signed": signed, **context}
    if signed is not None:
        values["grants"] = {p.value for p in GRANTS[signed.principal.role]}
        values["csrf"] = signed.csrf_token
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    # Pages hold operational data: never cached, never framed, no scripts but our own.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    return response


def error_page(request: Request, signed: SignedIn | None, exc: ConnectorError) -> HTMLResponse:
    """A refused or failed action, as a page with the same status the API would answer."""
    status = http_status(exc)
    return render(
        request,
        "error.html",
        {"status": status, "message": exc.message, "code": exc.code},
        signed=signed,
        status_code=status,
    )


def permission_label(permission: Permission) -> str:
    """The least role that holds a permission, for hints beside buttons."""
    for role, granted in GRANTS.items():
        if permission in granted:
            return role.value
    return "admin"
