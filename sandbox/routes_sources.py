"""Ping and data sources."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import shapes
from sandbox.records import DataSource
from sandbox.responses import ApiError, json_body, store_of


async def ping(request: Request) -> Response:
    """GET /v1/ping."""
    return JSONResponse({"data": "pong!"})


def _source(request: Request) -> DataSource:
    found = store_of(request).data_sources.get(request.path_params["uuid"])
    if found is None:
        raise ApiError(404, "Data source not found", "data_source_uuid")
    return found


async def create_source(request: Request) -> Response:
    """POST /v1/data_sources."""
    body = await json_body(request)
    source = store_of(request).add_data_source(body.get("name"))
    return JSONResponse(shapes.data_source(source))


async def list_sources(request: Request) -> Response:
    """GET /v1/data_sources: {"data_sources": [...]}, filters name and system, no cursor."""
    name = request.query_params.get("name")
    system = request.query_params.get("system")
    found = [
        shapes.data_source(source)
        for source in store_of(request).data_sources.values()
        if (name is None or source.name == name) and (system is None or source.system == system)
    ]
    return JSONResponse({"data_sources": found})


async def get_source(request: Request) -> Response:
    """GET /v1/data_sources/{uuid}."""
    return JSONResponse(shapes.data_source(_source(request)))


async def delete_source(request: Request) -> Response:
    """DELETE /v1/data_sources/{uuid}: 204."""
    store_of(request).delete_data_source(_source(request))
    return Response(status_code=204)


ROUTES = [
    Route("/v1/ping", ping, methods=["GET"]),
    Route("/v1/data_sources", create_source, methods=["POST"]),
    Route("/v1/data_sources", list_sources, methods=["GET"]),
    Route("/v1/data_sources/{uuid}", get_source, methods=["GET"]),
    Route("/v1/data_sources/{uuid}", delete_source, methods=["DELETE"]),
]
