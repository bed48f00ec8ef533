"""`SandboxServer`: the sandbox on a free loopback port in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from sandbox.app import create_sandbox_app
from sandbox.config import SandboxConfig
from sandbox.gate import Gate
from sandbox.live import Sandbox


def uvicorn_config(app: Gate, *, host: str, port: int, log_level: str) -> uvicorn.Config:
    """One uvicorn configuration for the CLI and the in-process server."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        # Enough for the 503 test and real bursts; uvicorn's default 2048 is fine too.
        backlog=256,
        timeout_keep_alive=30,
        log_config=None,  # records go to the root logger (JSON under `cmrelay sandbox`)
    )


class SandboxServer:
    """Start with `with SandboxServer(config) as server:`; `server.base_url` ends in /v1."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = 10.0,
    ) -> None:
        self.app = create_sandbox_app(config)
        self._start_timeout = start_timeout
        # Bound here, not by uvicorn, so the port (0 = a free one) is known before start().
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn_config(self.app, host=host, port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def sandbox(self) -> Sandbox:
        """The live store, limits and faults (for seeding; touch only while idle)."""
        return self.app.sandbox

    @property
    def root_url(self) -> str:
        """http://HOST:N"""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base, like https://api.chartmogul.com/v1."""
        return f"{self.root_url}/v1"

    @property
    def control_url(self) -> str:
        """The control API base (…/_sandbox)."""
        return f"{self.root_url}/_sandbox"

    def webhook_url(self, token: str = "token") -> str:  # noqa: S107 - a sandbox path, not a secret
        """A URL of the Segment webhook receiver."""
        return f"{self.root_url}/segment-webhook/{token}"

    def start(self) -> SandboxServer:
        """Start serving; returns once the port answers."""
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
