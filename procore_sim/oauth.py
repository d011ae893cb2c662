"""OAuth endpoints: client-credentials token grant and token info."""

from __future__ import annotations

import base64
import binascii
import json
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from procore_sim.api import json_response
from procore_sim.guard import bearer_token, request_info, sim_of, unauthorized
from procore_sim.listing import ApiError

INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication included, "
    "or unsupported authentication method."
)


def _multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    header = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(header + body)
    fields: dict[str, str] = {}
    if not isinstance(message, Message) or not message.is_multipart():
        return fields
    for part in message.get_payload():
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


async def token_params(request: Request) -> dict[str, str]:
    """Grant parameters from the query, a form, multipart or JSON body, and HTTP Basic auth."""
    params: dict[str, str] = dict(request.query_params)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if "json" in content_type:
        try:
            parsed: Any = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, {"error": "invalid_request",
                                 "error_description": "The request body is not valid JSON."}
                           ) from None
        if isinstance(parsed, dict):
            params.update({str(k): str(v) for k, v in parsed.items() if v is not None})
    elif "multipart/form-data" in content_type:
        params.update(_multipart_fields(content_type, body))
    elif body:
        params.update(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, {"error": "invalid_client",
                                 "error_description": INVALID_CLIENT}) from None
        params.setdefault("client_id", user)
        params.setdefault("client_secret", password)
    return params


async def token_endpoint(request: Request) -> Response:
    """POST /oauth/token with grant_type=client_credentials."""
    sim = sim_of(request)
    params = await token_params(request)
    grant = params.get("grant_type")
    if grant != "client_credentials":
        raise ApiError(400, {
            "error": "unsupported_grant_type",
            "error_description": "The authorization grant type is not supported by the "
                                 "authorization server.",
        })
    if not sim.check_client(params.get("client_id"), params.get("client_secret")):
        raise ApiError(401, {"error": "invalid_client", "error_description": INVALID_CLIENT})
    request_info(request)["authorized"] = True
    return json_response(sim.issue_token(params["client_id"]),
                         headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def token_info_endpoint(request: Request) -> Response:
    """GET /oauth/token/info for the bearer token."""
    sim = sim_of(request)
    issued, reason = sim.token_owner(bearer_token(request))
    if issued is None:
        raise unauthorized(reason)
    request_info(request)["authorized"] = True
    return json_response({
        "resource_owner_id": None,
        "scopes": [],
        "expires_in_seconds": max(int(issued.expires_at - sim.clock()), 0),
        "application": {"uid": issued.client_id},
        "created_at": int(issued.created_at),
    })


def oauth_routes() -> list[BaseRoute]:
    """Starlette routes of the simulated login service."""
    return [
        Route("/oauth/token", token_endpoint, methods=["POST"]),
        Route("/oauth/token/info", token_info_endpoint, methods=["GET"]),
    ]
