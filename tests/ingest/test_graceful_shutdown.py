"""SIGTERM on a real `cmrelay ingest` process while clients keep sending: it stops accepting,
a request under way when the signal lands is finished, nothing acknowledged is lost, exit 0."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import redis

from cmrelay.keys import Keys
from cmrelay.redis_server import free_port
from tests.support.processes import wait_for
from tests.support.services import listening

from .conftest import WRITE_KEY, queued

ROOT = Path(__file__).resolve().parents[2]
BATCH = 50  # events per request: enough work per request that some are under way at SIGTERM


@dataclass
class Sender:
    """One client thread posting batches until the ingest stops answering."""

    url: str
    acked: list[str] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10, auth=(WRITE_KEY, "")) as http:
            while not self.stop.is_set():
                ids = [uuid.uuid4().hex for _ in range(BATCH)]
                batch = [{"type": "identify", "userId": "u", "messageId": i} for i in ids]
                try:
                    answer = http.post("/v1/batch", json={"batch": batch})
                except httpx.TransportError:
                    return  # the ingest is gone: a real client would retry elsewhere
                self.statuses.add(answer.status_code)
                if answer.status_code == 200:
                    self.acked.extend(ids)


def test_sigterm_stops_accepting_finishes_in_flight_and_loses_nothing(
    redis_url: str, redis_client: redis.Redis
) -> None:
    port, prefix = free_port(), f"gs{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ, "REDIS_URL": redis_url, "SEGMENT_WRITE_KEYS": WRITE_KEY,
        "CMRELAY_KEY_PREFIX": prefix, "CMRELAY_CONFIG": os.devnull, "LOG_LEVEL": "info",
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "cmrelay_cli", "ingest", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    senders = [Sender(url) for _ in range(4)]
    threads = [threading.Thread(target=s.run, daemon=True) for s in senders]
    try:
        wait_for(lambda: _answers(url), 20, "the ingest to start")
        for thread in threads:
            thread.start()
        wait_for(lambda: sum(len(s.acked) for s in senders) >= 40 * BATCH, 30, "traffic")
        slow, slow_ids = _start_slow_request(port)  # the app is reading its body
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: not listening(port), 20, "the ingest to stop accepting")
        slow_answer = _finish_slow_request(slow, slow_ids)
        assert process.wait(30) == 0
    finally:
        for sender in senders:
            sender.stop.set()
        for thread in threads:
            thread.join(15)
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read().decode() if process.stderr else ""
    acked = [i for s in senders for i in s.acked]
    on_queue = {env.message_id for env in queued(redis_client, prefix)}
    assert set(acked) <= on_queue, f"{len(set(acked) - on_queue)} acknowledged events lost"
    assert all(status == 200 for s in senders for status in s.statuses)  # never a 5xx
    # The request under way when SIGTERM landed was finished, acknowledged and queued.
    assert slow_answer.startswith(b"HTTP/1.1 200"), slow_answer[:200]
    assert set(slow_ids) <= on_queue
    assert all(line.startswith("{") for line in stderr.splitlines() if line.strip()), stderr
    redis_client.delete(Keys(prefix).ingest_queue)


def _start_slow_request(port: int) -> tuple[socket.socket, list[str]]:
    """Send a batch's headers with `Expect: 100-continue` and wait for "100 Continue": uvicorn
    sends it when the app starts reading the body, so the request is then under way."""
    ids = [uuid.uuid4().hex for _ in range(3)]
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    length = len(_slow_body(ids))
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    sock.sendall(
        f"POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        "Expect: 100-continue\r\n\r\n".encode()
    )
    assert sock.recv(64).startswith(b"HTTP/1.1 100")
    return sock, ids


def _slow_body(ids: list[str]) -> bytes:
    return orjson.dumps(
        {"batch": [{"type": "identify", "userId": "s", "messageId": i} for i in ids]}
    )


def _finish_slow_request(sock: socket.socket, ids: list[str]) -> bytes:
    with sock:
        sock.sendall(_slow_body(ids))
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
