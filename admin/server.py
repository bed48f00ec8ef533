"""The admin API and DLQ page on uvicorn, on ADMIN_HOST:ADMIN_PORT (`cmrelay admin`)."""

from __future__ import annotations

import uvicorn

from admin.app import create_app
from admin.context import AdminContext
from cmrelay.logs import configure_logging
from cmrelay.settings import Settings


def uvicorn_config(
    settings: Settings, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """The admin server; refuses (ConfigurationError) without ADMIN_TOKEN."""
    return uvicorn.Config(
        create_app(AdminContext.from_settings(settings)),
        host=host or settings.admin_host,
        port=settings.admin_port if port is None else port,
        # No access log: entry ids are harmless, but filters may carry customer data.
        access_log=False,
        log_config=None,  # uvicorn's records reach the JSON root logger, secrets masked
        log_level=settings.log_level.lower(),
        server_header=False,
        # The wrong-token throttle counts by client address: the TCP peer, never a header the
        # client writes (uvicorn would trust X-Forwarded-For from 127.0.0.1, where the admin
        # listens by default, so anyone on the host could pick a fresh address per guess).
        proxy_headers=False,
    )


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    """Run the admin server in the foreground until stopped."""
    configure_logging(settings)
    server = uvicorn.Server(uvicorn_config(settings, host, port))
    server.run()
    return 0 if server.started else 1
