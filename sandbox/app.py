"""`create_sandbox_app(config)`: the whole sandbox as one ASGI app."""

from __future__ import annotations

from starlette.applications import Starlette

from sandbox import (
    control,
    routes_attributes,
    routes_contacts,
    routes_customers,
    routes_sources,
    webhook,
)
from sandbox.config import SandboxConfig
from sandbox.gate import Gate
from sandbox.live import Sandbox
from sandbox.responses import EXCEPTION_HANDLERS

ROUTES = [
    *routes_sources.ROUTES,
    *routes_customers.ROUTES,
    *routes_attributes.ROUTES,
    *routes_contacts.ROUTES,
    *webhook.ROUTES,
    *control.ROUTES,
]


def create_sandbox_app(config: SandboxConfig | None = None) -> Gate:
    """The ASGI app; `.sandbox` gives in-process access to the store (e.g. to seed it)."""
    sandbox = Sandbox(config or SandboxConfig())
    inner = Starlette(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS)
    inner.state.sandbox = sandbox
    return Gate(sandbox, inner)
