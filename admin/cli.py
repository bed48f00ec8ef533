"""`cmrelay admin`: serve the DLQ admin API and page on ADMIN_HOST:ADMIN_PORT."""

from __future__ import annotations

import argparse

import uvicorn

from admin.app import create_app
from admin.context import AdminContext
from cmrelay.logs import configure_logging
from config.settings import Settings, load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `cmrelay admin` to the main parser."""
    parser = sub.add_parser("admin", help="serve the DLQ admin API and web page (ADMIN_TOKEN)")
    parser.add_argument("--host", default=None, help="override ADMIN_HOST")
    parser.add_argument("--port", type=int, default=None, help="override ADMIN_PORT")
    parser.set_defaults(handler=_run)


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
    )


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings)
    server = uvicorn.Server(uvicorn_config(settings, args.host, args.port))
    server.run()
    return 0 if server.started else 1
