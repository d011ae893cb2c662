"""HTTP plumbing shared by every router: error rendering and the request body size limit."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import (
    BadRequest,
    Conflict,
    ConnectorError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
)
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


# The one place that turns an error family into an HTTP status; anything else is a 500.
HTTP_STATUS: dict[type[ConnectorError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    Unprocessable: 422,
    ServiceUnavailable: 503,
}


def http_status(error: ConnectorError) -> int:
    """The HTTP status of an error: that of its nearest family in HTTP_STATUS, else 500."""
    for family in type(error).__mro__:
        if family in HTTP_STATUS:
            return HTTP_STATUS[family]
    return 500


def error_response(error: ConnectorError) -> JSONResponse:
    """Renders a domain error as `{"error": {code, message, details}}`."""
    status = http_status(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error.to_body(), status_code=status, headers=headers)


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


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A Pydantic JSON schema with its `$defs` substituted in place (for hand-written OpenAPI)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                merged = {**definitions[ref.removeprefix("#/$defs/")], **node}
                merged.pop("$ref")
                return resolve(merged)
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def install_openapi(app: FastAPI) -> None:
    """OpenAPI that tells the truth about validation: 400 in our error shape, never 422.

    FastAPI documents a 422 `HTTPValidationError` on every route with parameters; this service
    answers validation errors with 400 `{"error": ...}` (a 422 means Procore refused something).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        bad_request = {
            "description": "malformed request or invalid value",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            },
        }
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                documented = str(responses.get("422", {}))
                if "HTTPValidationError" in documented:
                    del responses["422"]
                    responses.setdefault("400", bad_request)
        schemas = spec.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas.setdefault(
            "ErrorResponse",
            ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}"),
        )
        schemas.setdefault("ErrorDetail", ErrorDetail.model_json_schema())
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


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
