"""Request parsing and the error responses every route shares."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox import shapes
from sandbox.behaviour import Behaviour
from sandbox.paging import BadCursorError, decode_cursor, per_page
from sandbox.state import Store
from sandbox.validation import Invalid


class ApiError(Exception):
    """An error answered as {"code", "message", "param"} with this status."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


def not_found(what: str, param: str | None = None) -> ApiError:
    """A 404 in ChartMogul's style."""
    return ApiError(404, f"{what} not found", param)


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> object:
    """Strict JSON: NaN and Infinity, which Python would accept, are refused like elsewhere."""
    return json.loads(raw, parse_constant=_no_constants)


def behaviour_of(request: Request) -> Behaviour:
    """The behaviour settings of the sandbox serving this request (they change at run time)."""
    behaviour: Behaviour = request.app.state.sandbox.behaviour
    return behaviour


def store_of(request: Request) -> Store:
    """The store of the sandbox serving this request."""
    store: Store = request.app.state.sandbox.store
    return store


async def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object; a 400 for anything else."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise ApiError(400, "A JSON request body is required")
        return {}
    try:
        body = parse_json(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return body


def paging(request: Request) -> tuple[int | None, int]:
    """(after, size) from `cursor` and `per_page`; 400 for the deprecated `page`."""
    query = request.query_params
    if "page" in query:
        raise ApiError(400, 'Parameter "page" is deprecated', "page")
    try:
        size = per_page(query.get("per_page"))
    except ValueError:
        raise ApiError(400, "per_page must be a positive integer", "per_page") from None
    try:
        return decode_cursor(query.get("cursor")), size
    except BadCursorError:
        raise ApiError(400, "Invalid cursor", "cursor") from None


async def api_error(request: Request, exc: Exception) -> Response:
    """Starlette handler for ApiError."""
    assert isinstance(exc, ApiError)
    return JSONResponse(shapes.error(exc.status, exc.message, exc.param), status_code=exc.status)


async def invalid(request: Request, exc: Exception) -> Response:
    """Starlette handler for Invalid: 422 {"errors": {...}}."""
    assert isinstance(exc, Invalid)
    return JSONResponse({"errors": exc.errors}, status_code=422)


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods in the same {"code", "message", "param"} shape."""
    assert isinstance(exc, HTTPException)
    body = shapes.error(exc.status_code, exc.detail)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


EXCEPTION_HANDLERS = {ApiError: api_error, Invalid: invalid, HTTPException: http_error}
