"""One exception hierarchy for everything the Procore API can answer badly."""

from __future__ import annotations

import json
from typing import Any

import httpx

NOT_CONNECTED_TEXT = "app is not connected to this company"
_MAX_MESSAGE_CHARS = 500


class ProcoreError(Exception):
    """A call to Procore failed; carries the status, Procore's message and the request id."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        path: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.path = path
        self.retry_after = retry_after  # seconds Procore asked us to wait, when it said

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.path:
            parts.append(f"path={self.path}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " | ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"path={self.path!r}, request_id={self.request_id!r})"
        )


class ProcoreAuthError(ProcoreError):
    """401 that survived one token refresh and retry, or a token request that failed."""


class InvalidClientError(ProcoreAuthError):
    """The token endpoint rejected the credentials (``invalid_client``)."""


class ProcoreForbiddenError(ProcoreError):
    """403: missing permission, tool disabled, project not permitted."""


class AppNotConnectedError(ProcoreForbiddenError):
    """403 "App is not connected to this company": the installation is gone."""


class AppNotInstalledError(AppNotConnectedError, ProcoreAuthError):
    """401 to a freshly minted token: the app is not installed (or not connected) in this
    company; another token would be refused too (procore-api.md section 11)."""


class ProcoreNotFoundError(ProcoreError):
    """404: missing resource or no read access."""


class ProcoreRateLimitError(ProcoreError):
    """429 answers exhausted the retry budget."""


class ProcoreServerError(ProcoreError):
    """5xx answers exhausted the retry budget."""


class ProcoreNetworkError(ProcoreError):
    """Timeouts or dropped connections exhausted the retry budget."""


class ProcoreBadRequestError(ProcoreError):
    """400/406/408/409/422: the request itself is wrong; retrying will not help."""


_BAD_REQUEST_STATUSES = frozenset({400, 406, 408, 409, 422})


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def message_from_body(body: Any) -> str | None:
    """Returns Procore's human message from any of the error body shapes it uses."""
    if isinstance(body, str):
        return _text(body)
    if isinstance(body, list):
        texts = [m for m in (message_from_body(item) for item in body) if m]
        return "; ".join(texts) or None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        # {error: {code, message, details[]}} and the v2 standard shape
        main = _text(error.get("message")) or _text(error.get("code"))
        details = error.get("details")
        detail_text = message_from_body(details) if isinstance(details, list) else None
        if main and detail_text and detail_text != main:
            return f"{main}: {detail_text}"
        return main or detail_text
    for key in ("message", "error_description", "reason"):
        found = _text(body.get(key))
        if found:
            return found
    plain_error = _text(error)
    if plain_error:
        return plain_error
    errors = body.get("errors")
    if isinstance(errors, dict):
        flat = [
            f"{field} {msgs if isinstance(msgs, str) else ', '.join(map(str, msgs))}"
            for field, msgs in errors.items()
            if isinstance(msgs, str | list)
        ]
        return "; ".join(flat) or None
    if errors is not None:
        return message_from_body(errors)
    return None


def message_from_response(response: httpx.Response) -> str:
    """Returns the best available human message of an error answer, bounded in length."""
    message: str | None = None
    content = response.content
    if content:
        try:
            message = message_from_body(json.loads(content))
        except (ValueError, UnicodeDecodeError):
            message = _text(content[:_MAX_MESSAGE_CHARS].decode("utf-8", "replace"))
    if not message:
        message = response.reason_phrase or f"HTTP {response.status_code}"
    return message[:_MAX_MESSAGE_CHARS]


def request_id_of(response: httpx.Response) -> str | None:
    """Returns the ``x-request-id`` Procore attached to an answer, if any."""
    value = response.headers.get("x-request-id")
    return str(value) if value else None


def error_for_response(
    response: httpx.Response, path: str, *, secrets: tuple[str, ...] = ()
) -> ProcoreError:
    """Builds the matching exception for a final (non-retried) error answer."""
    status = response.status_code
    message = redact(message_from_response(response), secrets)
    kwargs: dict[str, Any] = {
        "status": status,
        "request_id": request_id_of(response),
        "path": path,
    }
    cls: type[ProcoreError]
    if status == 401:
        cls = ProcoreAuthError
    elif status == 403:
        cls = (
            AppNotConnectedError
            if NOT_CONNECTED_TEXT in message.lower()
            else (ProcoreForbiddenError)
        )
    elif status == 404:
        cls = ProcoreNotFoundError
    elif status == 429:
        cls = ProcoreRateLimitError
    elif status >= 500:
        cls = ProcoreServerError
    elif status in _BAD_REQUEST_STATUSES:
        cls = ProcoreBadRequestError
    else:
        cls = ProcoreError
    return cls(message, **kwargs)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Replaces every occurrence of the given secrets in ``text``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
