"""The console's forms: sign-in and sign-out, and every action on installations and runs.

Each action reads its form only after the session is known and the CSRF token checked, then
calls the same `app.admin.actions` function as the REST API (same role check, same audit).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.admin import actions
from app.admin.auth import Permission, client_ip
from app.admin.destination_test import test_installation_destination
from app.audit import service as audit
from app.audit.schemas import Action, Actor, Source
from app.console import sessions
from app.console.web import (
    SignedInDep,
    as_page,
    console_caller,
    error_page,
    read_form,
    render,
)
from app.core.database import unit_of_work
from app.core.errors import BadRequest, ConnectorError
from app.deps import RuntimeDep, SessionDep
from app.installations.schemas import InstallationPatch

router = APIRouter(prefix="/console", include_in_schema=False)


def _cookie_flags(request: Request) -> dict[str, Any]:
    """HttpOnly, SameSite=strict, and Secure whenever the request came over TLS."""
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
        "path": sessions.COOKIE_PATH,
    }


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: only a console path, never another site."""
    target = unquote(value or "")
    if target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/installations"


def _sign_in_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    form_token = secrets.token_urlsafe(32)
    response = render(
        request,
        "sign_in.html",
        {
            "form_token": form_token,
            "error": error,
            "next": _safe_next(request.query_params.get("next")),
        },
        status_code=status,
    )
    response.set_cookie(sessions.SIGN_IN_COOKIE, form_token, max_age=3600, **_cookie_flags(request))
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    """The sign-in page: paste an admin token."""
    return _sign_in_page(request)


@router.post("/sign-in")
async def sign_in(request: Request, rt: RuntimeDep) -> Response:
    """Checks the token; opens a session (cookie) or records a failed sign-in."""
    try:
        fields = await read_form(request, request.cookies.get(sessions.SIGN_IN_COOKIE) or "-")
    except ConnectorError as exc:
        return _sign_in_page(request, error=exc.message, status=403)
    token = sessions.check_token(rt.settings, fields.get("token", ""))
    ip = client_ip(request)
    async with unit_of_work(rt.sessions) as session:
        if token is None:
            await audit.record(
                session,
                Actor(name="anonymous", role=None, source=Source.console, ip=ip),
                Action.sign_in_failed,
                after={"reason": "not a token of CONNECTOR_ADMIN_TOKENS"},
            )
        else:
            await sessions.forget_expired(session)
            cookie = await sessions.start(session, rt.settings, token)
            await audit.record(
                session,
                Actor(name=token.name, role=token.role.value, source=Source.console, ip=ip),
                Action.sign_in,
            )
    if token is None:
        return _sign_in_page(
            request, error="That is not one of the service's admin tokens.", status=401
        )
    response = RedirectResponse(_safe_next(fields.get("next")), status_code=303)
    response.set_cookie(
        sessions.COOKIE,
        cookie,
        max_age=rt.settings.console_session_seconds,
        **_cookie_flags(request),
    )
    response.delete_cookie(sessions.SIGN_IN_COOKIE, path=sessions.COOKIE_PATH)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, signed: SignedInDep, session: SessionDep) -> Response:
    """Ends the session everywhere (the row is deleted) and clears the cookie."""
    try:
        await read_form(request, signed.csrf_token)
    except ConnectorError as exc:
        return error_page(request, signed, exc)
    await sessions.end(session, request.cookies.get(sessions.COOKIE))
    await audit.record(session, console_caller(request, signed).actor, Action.sign_out)
    response = render(request, "signed_out.html", {})
    response.delete_cookie(sessions.COOKIE, path=sessions.COOKIE_PATH)
    return response


@router.get("/expired")
async def expired(request: Request) -> Response:
    """Said plainly: the session ended; sign in again."""
    response = render(request, "expired.html", {}, status_code=401)
    response.delete_cookie(sessions.COOKIE, path=sessions.COOKIE_PATH)
    return response


def _back(company_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"/console/installations/{company_id}?done={done}", status_code=303)


@router.post("/installations/{company_id}/sync")
async def sync(
    request: Request, company_id: int, signed: SignedInDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """Queues a sync (a full refresh when ticked) and shows its live progress."""
    with as_page(signed):
        fields = await read_form(request, signed.csrf_token)
        run = await actions.queue_sync(
            session,
            rt,
            console_caller(request, signed),
            company_id,
            full_refresh=fields.get("full_refresh") == "on",
        )
    return RedirectResponse(f"/console/runs/{run.id}?done=sync_queued", status_code=303)


@router.post("/installations/{company_id}/pause")
async def pause(
    request: Request, company_id: int, signed: SignedInDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """Pauses (paused=on) or resumes the installation's schedule."""
    with as_page(signed):
        fields = await read_form(request, signed.csrf_token)
        paused = fields.get("paused") == "on"
        patch = InstallationPatch(paused=paused)
        await actions.patch_installation(
            session, rt, console_caller(request, signed), company_id, patch
        )
    return _back(company_id, "paused" if paused else "resumed")


@router.post("/installations/{company_id}/settings")
async def settings(
    request: Request, company_id: int, signed: SignedInDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """Changes the schedule and the streams."""
    with as_page(signed):
        fields = await read_form(request, signed.csrf_token)
        patch = _patch(schedule=fields.get("schedule"), streams=fields.get("streams"))
        await actions.patch_installation(
            session, rt, console_caller(request, signed), company_id, patch
        )
    return _back(company_id, "settings_saved")


def _patch(**values: str | None) -> InstallationPatch:
    """An InstallationPatch from form text; a value the API would refuse is a 400 page."""
    given = {k: v.strip() for k, v in values.items() if v is not None and v.strip()}
    if not given:
        raise BadRequest("nothing to change")
    try:
        return InstallationPatch.model_validate(given)
    except ValueError as exc:
        raise BadRequest(f"not a valid value: {str(exc).splitlines()[-1][:200]}") from None


@router.post("/installations/{company_id}/destination")
async def destination(
    request: Request, company_id: int, signed: SignedInDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """Points the installation at another destination (confirmed on the page before); an
    HTTP destination's first signing secret is shown once."""
    with as_page(signed):
        fields = await read_form(request, signed.csrf_token)
        patch = _patch(destination_url=fields.get("destination_url"))
        _inst, secret = await actions.patch_installation(
            session, rt, console_caller(request, signed), company_id, patch
        )
    if secret is not None:
        return render(
            request, "secret.html", {"company_id": company_id, "secret": secret}, signed=signed
        )
    return _back(company_id, "destination_saved")


@router.post("/installations/{company_id}/signing-secret")
async def signing_secret(
    request: Request, company_id: int, signed: SignedInDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """Makes a new signing secret and shows it once."""
    with as_page(signed):
        await read_form(request, signed.csrf_token)
        secret, _until = await actions.rotate_destination_secret(
            session, rt, console_caller(request, signed), company_id
        )
    return render(
        request, "secret.html", {"company_id": company_id, "secret": secret}, signed=signed
    )


@router.post("/installations/{company_id}/destination/test")
async def test_destination(
    request: Request, company_id: int, signed: SignedInDep, rt: RuntimeDep
) -> Response:
    """Checks the installation's destination without syncing (reachable, writable, signature
    accepted for HTTP) and shows each check; nothing written stays."""
    with as_page(signed):
        await read_form(request, signed.csrf_token)
        console_caller(request, signed).principal.require(Permission.configure)
        result = await test_installation_destination(rt, company_id)
    return render(
        request, "probe.html", {"company_id": company_id, "result": result}, signed=signed
    )


@router.post("/installations/{company_id}/uninstall")
async def uninstall(
    request: Request, company_id: int, signed: SignedInDep, rt: RuntimeDep
) -> Response:
    """Uninstalls, with a purge when ticked; the company id must be typed to confirm."""
    with as_page(signed):
        fields = await read_form(request, signed.csrf_token)
        if fields.get("confirm", "").strip() != str(company_id):
            raise BadRequest("type the company id to confirm the uninstall")
        purge = fields.get("purge") == "on"
        await actions.uninstall(rt, console_caller(request, signed), company_id, purge=purge)
    return _back(company_id, "purged" if purge else "uninstalled")


@router.post("/runs/{run_id}/cancel")
async def cancel(
    request: Request, run_id: str, signed: SignedInDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """Stops a queued or running run."""
    with as_page(signed):
        await read_form(request, signed.csrf_token)
        await actions.cancel_sync(session, rt, console_caller(request, signed), run_id[:64])
    return RedirectResponse(f"/console/runs/{run_id[:64]}?done=cancel_requested", status_code=303)
