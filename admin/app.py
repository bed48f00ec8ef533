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


def create_app(ctx: AdminContext) -> Starlette:
    """The admin app for one relay (ctx from AdminContext.from_settings)."""
    return Starlette(
        routes=[*api.routes(ctx), *web.routes(ctx)],
        exception_handlers={HTTPException: _http_error},
    )
