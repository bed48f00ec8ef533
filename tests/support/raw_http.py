"""HTTP/1.1 over a bare socket, for what an HTTP client will not send: lying Content-Lengths,
endless chunked bodies and headers, a byte at a time. Every call is bounded in bytes and time."""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Exchange:
    """What a hostile send got: the server's bytes, how much was sent, and how it ended."""

    response: bytes
    sent: int
    seconds: float
    closed: bool  # the server closed (or reset) the connection

    @property
    def status(self) -> int | None:
        """The status code of the first response, None when there was none."""
        match = re.match(rb"HTTP/1\.[01] (\d{3})", self.response)
        return int(match.group(1)) if match else None


SEND_BUFFER = 64 * 1024  # small, so that "sent" is close to what the server has taken in


def connect(url: str, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to the host and port of `url`, with a small send buffer."""
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    sock.settimeout(timeout)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    return sock


def send_until_answered(
    url: str, head: bytes, piece: bytes, *, max_bytes: int, seconds: float, pause: float = 0.0
) -> Exchange:
    """Send `head`, then `piece` again and again, until the server answers or closes, `max_bytes`
    are sent or `seconds` pass; then read what it says (for at most 2 s more)."""
    started = time.monotonic()
    sent = 0
    response = b""
    closed = False
    with connect(url) as sock:
        try:
            sock.sendall(head)
            sent += len(head)
            while sent < max_bytes and time.monotonic() - started < seconds:
                response += _ready_bytes(sock)
                if response:
                    break
                sock.sendall(piece)
                sent += len(piece)
                if pause:
                    time.sleep(pause)  # a slow client, not synchronisation
        except (BrokenPipeError, ConnectionResetError):
            closed = True  # what the server wrote before closing may still be readable
        more, ended = _read_rest(sock, 2.0)
        response += more
        closed = closed or ended
    return Exchange(response, sent, time.monotonic() - started, closed)


def _ready_bytes(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""
    finally:
        sock.setblocking(True)


def _read_rest(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """Bytes until EOF (True) or until `seconds` pass with the connection open (False)."""
    data = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, False
        except OSError:  # reset, or broken by the failed send
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False
