"""Serve the ingest ASGI app with uvicorn (filled in by the ingest work)."""

from __future__ import annotations

from cmrelay.errors import ConfigurationError
from config.settings import Settings


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    """Run the ingest in the foreground until interrupted."""
    raise ConfigurationError("the ingest server is not built yet")
