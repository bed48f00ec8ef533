"""JSON API under /api/: the `cmrelay dlq`, `trace` and `entity` views over HTTP, behind the
bearer token."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from admin.auth import presented_bearer, token_matches
from admin.bodies import BodyTooLarge, read_limited
from admin.context import AdminContext
from admin.throttle import client_address, throttled_message
from cmrelay.dlq import query as q
from cmrelay.dlq.store import DlqFilter
from cmrelay.entity_view import entity_view
from cmrelay.errors import InvalidQueryError
from cmrelay.keys import ENTITY_PREFIX
from cmrelay.trace_view import trace_view

MAX_BODY = 1_000_000  # a replay/purge request lists ids; 1 MB holds ~25,000 of them


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON answer."""
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def json_error(status: int, code: str, message: str, retry_after: int | None = None) -> Response:
    """The one error shape of the admin API."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return json_response({"error": code, "message": message}, status, headers)


Endpoint = Callable[[Request, AdminContext], Awaitable[Response]]


def _guarded(ctx: AdminContext, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """Bearer check first; bad input is a 400, never a 500."""

    async def run(request: Request) -> Response:
        try:
            refused = await _refused(ctx, request)
            if refused is not None:
                return refused
            return await endpoint(request, ctx)
        except BodyTooLarge as exc:
            too_large = json_error(413, "too_large", str(exc))
            too_large.headers["Connection"] = "close"  # stop reading the rest of the body
            return too_large
        except InvalidQueryError as exc:
            return json_error(400, "invalid_request", str(exc))
        except redis.RedisError as exc:
            return json_error(503, "redis_unavailable", type(exc).__name__)

    return run


async def _refused(ctx: AdminContext, request: Request) -> Response | None:
    """401 without the right bearer token, 429 while this address is throttled, else None."""
    address = client_address(request)
    given = presented_bearer(request)
    if given is None:  # no token at all is not a guess
        return json_error(401, "unauthorized", "send Authorization: Bearer <ADMIN_TOKEN>")
    if token_matches(ctx.token, given):
        wait = await run_in_threadpool(ctx.throttle.wait_seconds, address)
    else:
        wait = await run_in_threadpool(ctx.throttle.failed, address)
        if not wait:
            return json_error(401, "unauthorized", "that is not the admin token")
    if wait:
        return json_error(429, "too_many_failures", throttled_message(wait), wait)
    return None


def _query_filter(request: Request) -> Any:
    params = {k: v for k, v in request.query_params.items() if k != "offset"}
    return q.build_filter(params, time.time())


async def _body(request: Request) -> dict[str, Any]:
    raw = await read_limited(request, MAX_BODY)
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidQueryError("body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidQueryError("body must be a JSON object")
    return data


def _body_filter(data: dict[str, Any]) -> Any:
    raw = data.get("filter") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str | int) for v in raw.values()):
        raise InvalidQueryError("filter must be an object of strings")
    return q.build_filter({k: str(v) for k, v in raw.items()}, time.time(), q.MAX_SELECTION)


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise InvalidQueryError(f"{name} must be true or false")
    return value


def _ids(data: dict[str, Any]) -> list[str]:
    ids = data.get("ids") or []
    if not isinstance(ids, list):
        raise InvalidQueryError("ids must be a list")
    return q.ids_from(ids)


async def stats(request: Request, ctx: AdminContext) -> Response:
    """GET /api/dlq/stats."""
    return json_response(await run_in_threadpool(ctx.dlq.stats))


def _page(ctx: AdminContext, flt: DlqFilter, offset: int) -> dict[str, Any]:
    """One page of list records and the totals of everything the filter matches."""
    entries, tally = ctx.dlq.page(flt, offset)
    return {
        "entries": ctx.views(entries, q.summary),
        "total": tally.matching,
        "dead": tally.dead,
        "replayed": tally.replayed,
        "offset": offset,
        "limit": flt.limit,
    }


async def listing(request: Request, ctx: AdminContext) -> Response:
    """GET /api/dlq?reason=&status=&entity=&since=&until=&text=&error_class=&limit=&offset=."""
    flt = _query_filter(request)
    offset = q.parse_offset(request.query_params.get("offset"))
    return json_response(await run_in_threadpool(_page, ctx, flt, offset))


async def show(request: Request, ctx: AdminContext) -> Response:
    """GET /api/dlq/{id}."""
    entry = await run_in_threadpool(ctx.dlq.get, request.path_params["entry_id"])
    if entry is None:
        return json_error(404, "not_found", "no such entry (unknown, purged or past retention)")
    (view,) = await run_in_threadpool(ctx.views, [entry], q.detail)
    return json_response(view)


async def replay(request: Request, ctx: AdminContext) -> Response:
    """POST /api/dlq/replay {ids | all | filter, dry_run}."""
    data = await _body(request)
    ids, flt, everything = _ids(data), _body_filter(data), _flag(data, "all")
    if not ids and not everything and q.is_empty(flt):
        raise InvalidQueryError("say what to replay: ids, all=true, or a filter")
    selection = await run_in_threadpool(q.select, ctx.dlq, ids, flt)
    report = await run_in_threadpool(
        lambda: q.replay(ctx.dlq, selection, dry_run=_flag(data, "dry_run"))
    )
    return json_response(report.as_dict())


async def purge(request: Request, ctx: AdminContext) -> Response:
    """POST /api/dlq/purge {ids | filter | older_than, confirm: true}."""
    data = await _body(request)
    ids, flt = _ids(data), _body_filter(data)
    older_raw = data.get("older_than")
    if older_raw is not None and not isinstance(older_raw, str):
        raise InvalidQueryError("older_than must be a duration such as 7d")
    older = q.parse_duration(older_raw) if older_raw else None
    if not ids and older is None and q.is_empty(flt):
        raise InvalidQueryError("say what to purge: ids, a filter, or older_than")
    if not _flag(data, "confirm"):
        return json_error(400, "confirm_required", "purging deletes for good: send confirm=true")
    selection = await run_in_threadpool(q.select, ctx.dlq, ids, flt, older, time.time())
    purged = await run_in_threadpool(ctx.dlq.purge, [e.id for e in selection.entries])
    return json_response({"purged": purged, "missing": selection.missing})


async def trace(request: Request, ctx: AdminContext) -> Response:
    """GET /api/trace/{message_id}: the event's trail (`cmrelay trace`)."""
    mid = request.path_params["message_id"]
    view = await run_in_threadpool(trace_view, ctx.dlq.client, ctx.dlq.keys, mid)
    if view is None:
        return json_error(404, "not_found", "no trace of that event (not taken yet, or expired)")
    return json_response(view)


async def entity(request: Request, ctx: AdminContext) -> Response:
    """GET /api/entity/{entity}: one customer's state (`cmrelay entity`)."""
    name = request.path_params["entity"]
    if not name.startswith(ENTITY_PREFIX):
        raise InvalidQueryError(f"entity looks like {ENTITY_PREFIX}<external id>, not {name!r}")
    view = await run_in_threadpool(entity_view, ctx.dlq.client, ctx.dlq.keys, name, time.time())
    return json_response(view)


def routes(ctx: AdminContext) -> list[Route]:
    """The API's routes, bound to one context."""
    return [
        Route("/api/dlq", _guarded(ctx, listing), methods=["GET"]),
        Route("/api/dlq/stats", _guarded(ctx, stats), methods=["GET"]),
        Route("/api/dlq/replay", _guarded(ctx, replay), methods=["POST"]),
        Route("/api/dlq/purge", _guarded(ctx, purge), methods=["POST"]),
        Route("/api/dlq/{entry_id}", _guarded(ctx, show), methods=["GET"]),
        Route("/api/trace/{message_id}", _guarded(ctx, trace), methods=["GET"]),
        Route("/api/entity/{entity}", _guarded(ctx, entity), methods=["GET"]),
    ]
