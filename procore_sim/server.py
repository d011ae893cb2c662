"""SimulatorServer: the simulator on a real loopback socket, served from a background thread."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.request
from types import TracebackType

import uvicorn

from procore_sim.application import create_app
from procore_sim.cli import config_to_options
from procore_sim.config import SimulatorConfig
from procore_sim.state import Simulator


class SimulatorServer:
    """Runs uvicorn in a thread; use as a context manager. `url` and `state` once entered."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_level: str = "warning",
    ) -> None:
        self.config = config or SimulatorConfig()
        self.host = host
        self.state = Simulator(self.config)
        self.app = create_app(sim=self.state)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level=log_level,
                access_log=False,
                lifespan="on",
                timeout_keep_alive=30,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of both the API and the login service, e.g. http://127.0.0.1:54321."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> SimulatorServer:
        """Starts serving and waits until the socket accepts requests."""
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"procore-sim-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Procore simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stops serving and closes the socket."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._socket.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SimulatorProcess:
    """`python -m procore_sim` in a child process (benchmarks: no GIL shared with the client).

    Give it a SimulatorConfig (its extra_clients and today are not passed on).

    Use as a context manager; `url` is ready once `__enter__` returns.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        companies: int = 1,
        projects: int = 1,
        records: int = 50,
        seed: int = 1,
    ) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = config or SimulatorConfig(
            companies=companies, projects=projects, records=records, seed=seed
        )
        self._args = ["--port", str(self.port), *config_to_options(self.config)]
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SimulatorProcess:
        self._process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "procore_sim", *self._args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/_sim/clients", timeout=1):  # noqa: S310
                    return self
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError("the simulator process did not start") from None
                time.sleep(0.1)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
