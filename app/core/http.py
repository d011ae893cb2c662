"""HTTP plumbing shared by every router: error rendering and the request body size limit."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import ConnectorError, PayloadTooLarge
from app.core.logging import get_logger, scrub_text

log = get_logger(__name__)


class ErrorDetail(BaseModel):
    """What went wrong, in the error body every endpoint answers with."""

    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["no installation for company 7"])
    details: list[dict[str, Any]] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """`{"error": {"code", "message", "details"}}` (SPEC section 4)."""

    error: ErrorDetail


def error_response(error: ConnectorError) -> JSONResponse:
    """Renders a domain error as `{"error": {code, message, details}}`."""
    headers = {"WWW-Authenticate": "Bearer"} if error.status_code == 401 else None
    return JSONResponse(error.to_body(), status_code=error.status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """One handler per error family, all answering the same JSON shape."""

    @app.exception_handler(ConnectorError)
    async def _domain(_request: Request, exc: ConnectorError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details: list[dict[str, Any]] = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "message": err.get("msg", ""),
            }
            for err in exc.errors()
        ]
        first = details[0] if details else {"field": "", "message": "invalid request"}
        body = {
            "error": {
                "code": "validation_error",
                "message": f"{first['field']}: {first['message']}".strip(": "),
                "details": details,
            }
        }
        return JSONResponse(body, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = {"error": {"code": code, "message": str(exc.detail), "details": []}}
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The message may quote a URL or a driver error: scrubbed, and never sent to the caller.
        log.error(
            "unhandled error",
            path=request.url.path,
            error_type=type(exc).__name__,
            error=scrub_text(str(exc))[:500],
        )
        body = {"error": {"code": "internal_error", "message": "internal error", "details": []}}
        return JSONResponse(body, status_code=500)


class BodySizeLimit:
    """Answers 413 when a request body is larger than the limit, declared or streamed.

    The body is read (up to the limit) before the app sees the request, so an oversized
    chunked body is refused with 413 instead of failing half-way through the app's parsing.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(f"request body is larger than {self.max_bytes} bytes")
        response = error_response(error)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
