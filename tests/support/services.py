"""Broker and HA services for the scaling tests: the machine's RabbitMQ, a private Sentinel."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cmrelay.redis_server import find_redis_server, free_port
from tests.support.processes import wait_for

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


def listening(port: int) -> bool:
    """Something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def ensure_rabbitmq(timeout: float = 90.0) -> str:
    """The machine's RabbitMQ URL; started with `rabbitmq-server -detached` when not running."""
    if not listening(5672):
        subprocess.run(["rabbitmq-server", "-detached"], check=True, timeout=30)
        wait_for(lambda: listening(5672), timeout, "RabbitMQ to listen on 5672", every=0.5)
    return RABBITMQ_URL


@dataclass
class PrivateSentinel:
    """A redis-sentinel process watching one master, with a generated (rewritable) config."""

    master_port: int
    service_name: str = "cmrelay-test"
    port: int = 0
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cmr-sentinel-")))
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        """Our sentinel:// URL for the master this sentinel watches."""
        return f"sentinel://127.0.0.1:{self.port}/{self.service_name}/{db}"

    def start(self) -> PrivateSentinel:
        self.port = free_port()
        config = self.workdir / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"sentinel monitor {self.service_name} 127.0.0.1 {self.master_port} 1\n"
            f"sentinel down-after-milliseconds {self.service_name} 5000\n"
        )
        self.process = subprocess.Popen(
            [find_redis_server(), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._knows_master, 20, "the sentinel to know its master")
        return self

    def _knows_master(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                name = self.service_name.encode()
                sock.sendall(
                    b"*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n"
                    + b"$%d\r\n%s\r\n" % (len(name), name)
                )
                return str(self.master_port).encode() in sock.recv(256)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)
