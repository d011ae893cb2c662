"""Outermost ASGI layer: injected faults, the request log and rate-limit headers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from procore_sim.faults import FaultPlan
from procore_sim.guard import company_header
from procore_sim.state import Simulator

CONTROL_PREFIX = "/_sim"
STATUS_TEXT = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ConnectionDroppedError(ConnectionError):
    """Raised when a drop is asked for but the server gives no way to close the socket."""


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def drop_connection(send: Send) -> None:
    """Closes the client's socket without sending a byte of response.

    Uvicorn's `send` is a method of its request cycle, which owns the transport; closing it
    and letting the loop notice the loss makes uvicorn skip its own 500 answer.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionDroppedError("simulated dropped connection")
    transport.close()
    for _ in range(50):
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0)


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    raw = json.dumps(body).encode()
    head = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(raw)).encode()),
    ]
    head += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


class SimulatorMiddleware:
    """Applies faults, adds X-Rate-Limit-* headers to /rest/ answers and logs each request."""

    def __init__(
        self,
        app: ASGIApp,
        sim: Simulator,
        on_first_request: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.app = app
        self.sim = sim
        self._on_first_request = on_first_request

    def _rate_headers(self, headers: dict[str, str]) -> dict[str, str]:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        issued, _ = self.sim.token_owner(token.strip() if scheme.lower() == "bearer" else "")
        client = issued.client_id if issued else None
        return self.sim.rate_peek((client, company_header(headers.get("procore-company-id"))))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and self._on_first_request is not None:
            starter, self._on_first_request = self._on_first_request, None
            await starter()
        if scope["type"] != "http" or path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        info: dict[str, Any] = {"authorized": False}
        scope["sim"] = info
        outcome = {"status": 0}
        started = time.time()
        plan = self.sim.plan_faults(path)
        is_rest = path.startswith("/rest/")

        logged = False

        def log() -> None:
            nonlocal logged
            if logged:
                return
            logged = True
            self.sim.log_request(
                {
                    "method": scope.get("method", ""),
                    "path": path,
                    "query": dict(
                        parse_qsl(
                            scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
                        )
                    ),
                    "status": outcome["status"],
                    "company_header": headers.get("procore-company-id"),
                    "authorized": bool(info.get("authorized")),
                    "time": started,
                    "dropped": plan.drop,
                }
            )

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                # Logged before the answer leaves, so a client never sees an answer whose
                # request is not in the log yet.
                log()
                if is_rest:
                    rate = info.get("rate") or self._rate_headers(headers)
                    extra = [(k.lower().encode(), v.encode()) for k, v in rate.items()]
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
                if plan.header_delay_s:
                    await asyncio.sleep(plan.header_delay_s)
            await send(message)

        try:
            if plan.drop:
                # Logged before the socket closes, so a client never sees the drop first.
                if plan.delay_s:
                    await asyncio.sleep(plan.delay_s)
                log()
                await drop_connection(send)
                return
            await self._serve(scope, receive, send, send_wrapper, plan)
        finally:
            log()

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, send_wrapper: Send, plan: FaultPlan
    ) -> None:
        if plan.delay_s:
            await asyncio.sleep(plan.delay_s)
        if plan.unavailable:
            await _send_json(
                send_wrapper,
                503,
                {"errors": "Service Unavailable"},
                {"Retry-After": str(plan.retry_after)},
            )
            return
        if plan.error_status is not None:
            text = STATUS_TEXT.get(plan.error_status, "Simulated server error")
            extra = {"Retry-After": str(plan.retry_after)} if plan.error_status == 503 else {}
            await _send_json(send_wrapper, plan.error_status, {"errors": text}, extra)
            return
        await self.app(scope, receive, send_wrapper)
