"""The admin Starlette app: JSON API under /api/dlq, the on-call page everywhere else."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import api, pages, web
from admin.context import AdminContext


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods: JSON under /api, a small page elsewhere."""
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    if request.url.path.startswith("/api/"):
        return api.json_error(status, "not_found" if status == 404 else "bad_request", str(exc))
    body = f'<h1>{status}</h1><p><a href="/">Dead letters</a></p>'
    return web.html(pages.layout(str(status), body), status)


async def _server_error(request: Request, exc: Exception) -> Response:
    """A bug, not bad input (that is a 4xx): a plain 500 that still carries the page's headers."""
    if request.url.path.startswith("/api/"):
        return api.json_error(500, "internal_error", "unexpected error; see the admin's log")
    body = '<h1>Something went wrong</h1><p>See the admin\'s log.</p><p><a href="/">back</a></p>'
    return web.html(pages.layout("Error", body), 500)


def create_app(ctx: AdminContext) -> Starlette:
    """The admin app for one relay (ctx from AdminContext.from_settings)."""
    return Starlette(
        routes=[*api.routes(ctx), *web.routes(ctx)],
        # Exception (500) is served by Starlette's outermost middleware, so it sees every error.
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
