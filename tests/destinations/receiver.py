"""A real HTTP receiver on loopback that checks Standard Webhooks signatures, for tests."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.destinations.signing import WebhookVerificationError, verify

PATH = "/hooks/procore"


@dataclass(slots=True)
class Delivery:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes
    signature_error: str | None

    @property
    def payload(self) -> dict[str, Any]:
        """Returns the decoded JSON body."""
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded


@dataclass(slots=True)
class StreamTally:
    """How much of a streamed answer the receiver managed to send."""

    sent: int = 0
    finished: bool = False


@dataclass(slots=True)
class ScriptedAnswer:
    """An answer the receiver gives instead of 200 to the next request."""

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    # A streamed body instead: `chunks` chunks of `chunk`, `pause` seconds apart.
    chunk: bytes = b""
    chunks: int = 0
    pause: float = 0.0
    tally: StreamTally | None = None


class Receiver:
    """Runs a Starlette app under uvicorn in a background thread on an ephemeral port."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.deliveries: list[Delivery] = []
        self._script: deque[ScriptedAnswer] = deque()
        self._lock = threading.Lock()
        app = Starlette(routes=[Route(PATH, self._handle, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        """Returns the URL to push to."""
        return f"http://127.0.0.1:{self.port}{PATH}"

    def answer_next(
        self, status: int, body: str = "", headers: dict[str, str] | None = None
    ) -> None:
        """Makes the next request get this answer (answers queue up in order)."""
        with self._lock:
            self._script.append(ScriptedAnswer(status, body, headers or {}))

    def stream_next(
        self, status: int, chunk: bytes, chunks: int, *, pause: float = 0.0
    ) -> StreamTally:
        """Makes the next answer a streamed body; returns its tally of bytes sent."""
        tally = StreamTally()
        answer = ScriptedAnswer(status, chunk=chunk, chunks=chunks, pause=pause, tally=tally)
        with self._lock:
            self._script.append(answer)
        return tally

    async def _stream(
        self, request: Request, answer: ScriptedAnswer, tally: StreamTally
    ) -> AsyncIterator[bytes]:
        for _ in range(answer.chunks):
            if answer.pause:
                await asyncio.sleep(answer.pause)
            if await request.is_disconnected():
                return  # the client hung up: the rest is never sent
            tally.sent += len(answer.chunk)
            yield answer.chunk
        tally.finished = True

    def accepted(self) -> list[Delivery]:
        """Returns the deliveries that were answered 2xx, in order."""
        return [d for d in self.deliveries if d.headers.get("x-test-answer") == "200"]

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        try:
            verify(self.secret, request.headers, body)
            signature_error = None
        except WebhookVerificationError as error:
            signature_error = str(error)
        with self._lock:
            scripted = self._script.popleft() if self._script else None
            status = 401 if signature_error else (scripted.status if scripted else 200)
            headers = dict(request.headers)
            headers["x-test-answer"] = str(status)
            self.deliveries.append(Delivery(headers, body, signature_error))
        if signature_error:
            return JSONResponse({"error": signature_error}, status_code=401)
        if scripted is not None and scripted.tally is not None:
            stream = self._stream(request, scripted, scripted.tally)
            return StreamingResponse(stream, status_code=scripted.status)
        if scripted is not None:
            return Response(scripted.body, status_code=scripted.status, headers=scripted.headers)
        return JSONResponse({"ok": True})

    def start(self) -> Receiver:
        """Starts the server and waits until it listens."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test receiver did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stops the server and waits for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
