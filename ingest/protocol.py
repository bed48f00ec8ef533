"""uvicorn's httptools protocol with the limits it lacks: header size and count, and deadlines.

uvicorn's httptools server reads headers of any size (an 8 MB header was read and answered;
four unfinished 100 MB headers took the ingest from 69 to 534 MB) and never times out a client
that sends slowly: its keep-alive timer runs only between requests. So, per connection:

- the request line and headers may take at most MAX_HEADER_BYTES and MAX_HEADERS, else 431;
- a new connection, or a request once its first byte arrived, has HEADER_TIMEOUT to finish its
  headers (else 408), and then BODY_TIMEOUT to finish its body (else the connection is closed;
  the handler sees a disconnect and nothing is queued).

Real clients send a few hundred bytes of headers and the whole request in milliseconds; the
limits are far above that (docs/reliability.md has the measurement).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ingest.metrics import METRICS_STATE, IngestMetrics

MAX_HEADER_BYTES = 32 * 1024  # request line + headers; Node allows 16 KiB, nginx 4 x 8 KiB
MAX_HEADERS = 100
HEADER_TIMEOUT = 10.0  # seconds from connect, or from a request's first byte, to its last header
BODY_TIMEOUT = 30.0  # seconds for the body: 512 kB at ~17 kB/s; Segment's clients give up at 10-15

_TOO_MANY = f"more than {MAX_HEADERS} request headers, or more than {MAX_HEADER_BYTES} bytes"
log = logging.getLogger("cmrelay.ingest")


class _HeadersTooLarge(Exception):  # noqa: N818 - raised inside the parser, never escapes
    """Raised from a parser callback to stop parsing: the headers are over a limit."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus header limits (431) and header/body deadlines (408 / close)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_headers = False
        self._header_bytes = 0
        self._header_count = 0
        self._parsed_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None

    # --- connection -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(HEADER_TIMEOUT, self._header_timeout)  # a connection that never sends a byte

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # HttpToolsProtocol.data_received, plus the header-size count and the 431.
        if self.transport.is_closing():
            return  # refused already: do not parse what is still arriving
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadersTooLarge):
                self._refuse(
                    431,
                    f"more than {MAX_HEADERS} request headers or {MAX_HEADER_BYTES} bytes of them",
                )
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_headers:
            # Still inside the headers after this chunk: all of it was header bytes, held by
            # httptools until a header ends (so on_header alone could not bound them).
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._refuse(431, f"request headers are larger than {MAX_HEADER_BYTES} bytes")

    # --- parser callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0
        self._header_count = 0
        self._parsed_bytes = 0
        if self._deadline is None:  # not yet armed at connect: a keep-alive request began
            self._arm(HEADER_TIMEOUT, self._header_timeout)

    def on_url(self, url: bytes) -> None:
        self._parsed_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Exact for every complete header, even when the headers end inside the chunk that
        # brought them (data_received's count covers only headers still unfinished).
        self._header_count += 1
        self._parsed_bytes += len(name) + len(value) + 4
        if self._header_count > MAX_HEADERS or self._parsed_bytes > MAX_HEADER_BYTES:
            raise _HeadersTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._arm(BODY_TIMEOUT, self._body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()  # the request is in; the keep-alive timer takes over after the answer
        super().on_message_complete()

    # --- refusals ---------------------------------------------------------------------------
    def _header_timeout(self) -> None:
        self._deadline = None
        if self._in_headers:
            self._refuse(408, f"request headers not received within {HEADER_TIMEOUT:g} s")
        elif not self.transport.is_closing():
            self.transport.close()  # connected and never sent a byte

    def _body_timeout(self) -> None:
        self._deadline = None
        log.debug("ingest: closing a connection whose body is slower than %g s", BODY_TIMEOUT)
        if not self.transport.is_closing():
            self._count("body_timeout")
            self.transport.close()  # the handler sees a disconnect: nothing is queued

    def _refuse(self, status: int, message: str) -> None:
        """Answer before any request is handled, and close: the rest is never read."""
        self._disarm()
        self._in_headers = False
        body = b'{"success":false,"code":"%s","message":"%s"}' % (
            b"headers_too_large" if status == 431 else b"request_timeout",
            message.encode(),
        )
        reason = b"Request Header Fields Too Large" if status == 431 else b"Request Timeout"
        head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n" % (status, reason)
        head += b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        if not self.transport.is_closing():
            self._count("headers_too_large" if status == 431 else "header_timeout")
            self.transport.write(head + body)
            self.transport.close()

    def _count(self, reason: str) -> None:
        """One refusal on the app's metrics (cmrelay_ingest_refused_total), if it keeps them."""
        metrics = self.app_state.get(METRICS_STATE)
        if isinstance(metrics, IngestMetrics):
            metrics.refused.labels(reason).inc()

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
