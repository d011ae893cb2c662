"""Mounting the console on the app: its pages, its forms, its static files, its redirects."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from app.console import forms, pages
from app.console.web import HERE, ConsolePageError, ConsoleRedirect, error_page, redirect_response


def install_console(app: FastAPI) -> None:
    """Serves the console under /console (no CDN: every asset is in app/console/static)."""
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.include_router(forms.router)
    app.include_router(pages.router)

    @app.exception_handler(ConsoleRedirect)
    async def _redirect(request: Request, exc: ConsoleRedirect) -> Response:
        return redirect_response(request, exc)

    @app.exception_handler(ConsolePageError)
    async def _error_page(request: Request, exc: ConsolePageError) -> Response:
        return error_page(request, exc.signed, exc.error)
