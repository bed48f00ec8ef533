"""The control API under /_sandbox/: state dump, counters, faults and limits, behaviour, reset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import shapes
from sandbox.behaviour import BehaviourError
from sandbox.faults import FAULT_ERRORS
from sandbox.responses import ApiError, json_body

if TYPE_CHECKING:
    from sandbox.live import Sandbox


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


async def state(request: Request) -> Response:
    """GET /_sandbox/state: everything that arrived, as JSON (with what the API never shows:
    each custom attribute's source, the fields dropped, the merges not done yet)."""
    sandbox = _sandbox(request)
    store = sandbox.store
    customers = [
        {**shapes.customer(c, store.data_sources), "custom_sources": dict(c.custom_sources)}
        for c in store.customers.values()
    ]
    return JSONResponse(
        {
            "data_sources": [shapes.data_source(ds) for ds in store.data_sources.values()],
            "customers": customers,
            "contacts": [shapes.contact(c) for c in store.contacts.values()],
            "custom_attribute_types": dict(store.attribute_types),
            "webhook_receipts": list(store.webhook_receipts),
            "dropped": list(store.dropped),
            "pending_jobs": store.pending_jobs,
            "behaviour": sandbox.behaviour.snapshot(),
        }
    )


async def stats(request: Request) -> Response:
    """GET /_sandbox/stats: requests by endpoint and status, and the in-flight peak."""
    sandbox = _sandbox(request)
    body = sandbox.stats.snapshot()
    body["in_flight_peak"] = sandbox.in_flight.peak
    return JSONResponse(body)


def _settings(sandbox: Sandbox) -> dict[str, Any]:
    return {
        **sandbox.faults.snapshot(),
        "rate_limit": sandbox.rate.limit,
        "max_in_flight": sandbox.in_flight.limit,
    }


async def get_faults(request: Request) -> Response:
    """GET /_sandbox/faults: the current faults and limits."""
    return JSONResponse(_settings(_sandbox(request)))


async def set_faults(request: Request) -> Response:
    """POST /_sandbox/faults: change any of latency, latency_max, error_rates, outage,
    retry_after, rules (replaces the list), rate_limit, max_in_flight (0 switches a limit off)."""
    sandbox = _sandbox(request)
    body = await json_body(request)
    try:
        rate = int(body.get("rate_limit", sandbox.rate.limit))
        parallel = int(body.get("max_in_flight", sandbox.in_flight.limit))
        sandbox.faults.update(body)
    except (*FAULT_ERRORS, TypeError, ValueError) as exc:
        raise ApiError(400, str(exc)) from None
    sandbox.rate.limit, sandbox.in_flight.limit = max(rate, 0), max(parallel, 0)
    return JSONResponse(_settings(sandbox))


async def get_behaviour(request: Request) -> Response:
    """GET /_sandbox/behaviour: the current behaviour settings."""
    return JSONResponse(_sandbox(request).behaviour.snapshot())


async def set_behaviour(request: Request) -> Response:
    """POST /_sandbox/behaviour: change any behaviour setting (docs/sandbox.md); a bad or
    unknown one gets 400 and changes nothing. POST /_sandbox/reset restores the start-up ones."""
    sandbox = _sandbox(request)
    body = await json_body(request)
    try:
        sandbox.behaviour = sandbox.behaviour.updated(body)
    except BehaviourError as exc:
        raise ApiError(400, str(exc)) from None
    return JSONResponse(sandbox.behaviour.snapshot())


async def requests(request: Request) -> Response:
    """GET /_sandbox/requests?since=SEQ&match=TEXT: the answered requests after SEQ."""
    log = _sandbox(request).requests
    try:
        since = int(request.query_params.get("since", "0"))
    except ValueError:
        raise ApiError(400, "since must be an integer") from None
    found = log.since(since, request.query_params.get("match"))
    return JSONResponse({"requests": found, "last_seq": log.next_seq - 1})


async def reset(request: Request) -> Response:
    """POST /_sandbox/reset: empty store, zero counters, start-up faults and limits."""
    sandbox = _sandbox(request)
    sandbox.reset()
    return JSONResponse(_settings(sandbox))


ROUTES = [
    Route("/_sandbox/state", state, methods=["GET"]),
    Route("/_sandbox/stats", stats, methods=["GET"]),
    Route("/_sandbox/faults", get_faults, methods=["GET"]),
    Route("/_sandbox/faults", set_faults, methods=["POST"]),
    Route("/_sandbox/behaviour", get_behaviour, methods=["GET"]),
    Route("/_sandbox/behaviour", set_behaviour, methods=["POST"]),
    Route("/_sandbox/requests", requests, methods=["GET"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
]
