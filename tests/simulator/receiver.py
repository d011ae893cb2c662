"""A webhook receiver on a loopback port: records every POST and answers as told."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass
class Received:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class Plan:
    """How the receiver answers: the next statuses in order, then `status`; an optional delay."""

    statuses: list[int] = field(default_factory=list)
    status: int = 204
    delay_s: float = 0.0


class Receiver:
    """Use as a context manager; `url` is the destination, `received` what arrived."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.plan = Plan()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with receiver._lock:
                    plan = receiver.plan
                    status = plan.statuses.pop(0) if plan.statuses else plan.status
                    delay = plan.delay_s
                if delay:
                    time.sleep(delay)
                with receiver._arrived:
                    receiver.received.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            json.loads(raw or b"{}"),
                            time.time(),
                        )
                    )
                    receiver._arrived.notify_all()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/procore"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, *statuses: int, then: int = 204, delay_s: float = 0.0) -> None:
        """Sets the next answers (in order), the answer after them, and a delay before each."""
        with self._lock:
            self.plan = Plan(list(statuses), then, delay_s)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Waits until `count` POSTs arrived; returns them all."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.received)} of {count} deliveries arrived"
                self._arrived.wait(left)
            return list(self.received)

    def bodies(self) -> list[dict[str, Any]]:
        """Every payload received so far."""
        with self._lock:
            return [r.body for r in self.received]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
