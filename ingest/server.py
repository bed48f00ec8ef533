"""Serve the ingest with uvicorn on httptools + uvloop (chosen by measurement: docs/decisions)."""

from __future__ import annotations

import logging
import signal

import uvicorn

from cmrelay.logs import configure_logging
from cmrelay.settings import Settings
from ingest.app import create_app
from ingest.protocol import GuardedHttpToolsProtocol

log = logging.getLogger("cmrelay.ingest")
GRACEFUL_SHUTDOWN_SECONDS = 20  # docker-compose gives the ingest 30 s before SIGKILL


def uvicorn_config(
    settings: Settings, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """The server configuration shared by `serve`, the tests and the benchmark."""
    return uvicorn.Config(
        create_app(settings),
        host=host or settings.ingest_host,
        port=settings.ingest_port if port is None else port,
        loop="uvloop",
        # httptools, plus header limits (431) and deadlines for slow clients: ingest/protocol.py
        http=GuardedHttpToolsProtocol,
        # No access log: /chartmogul and /webhook may carry ?writeKey= in the URL, a secret.
        access_log=False,
        log_level=settings.log_level.lower(),
        server_header=False,
        log_config=None,  # no handlers of uvicorn's own: its records reach our JSON root logger
        # SIGTERM: stop accepting, let in-flight requests finish (each ends with its queue
        # write acknowledged or refused), then exit. Longer than any one request can take.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    """Run the ingest in the foreground until interrupted; return the exit status."""
    configure_logging(settings)
    if settings.auth_disabled:
        log.warning(
            "!!! INGEST AUTHENTICATION IS OFF (embedded mode, no SEGMENT_WRITE_KEYS): "
            "anyone who can reach this port can queue events !!!"
        )
    elif not settings.segment_shared_secret:
        log.info(
            "SEGMENT_SHARED_SECRET is not set: /webhook needs a write key (Basic or ?writeKey=)"
        )
    server = uvicorn.Server(uvicorn_config(settings, host, port))
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler it found: make
    # that one a no-op so that a clean shutdown exits 0, not "killed by SIGTERM".
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    server.run()
    return 0 if server.started else 1
