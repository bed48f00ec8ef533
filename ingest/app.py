"""The ingest ASGI app: `create_app(settings)` wires routes, Redis, metrics and error answers.

Every handler runs inside `_answer`, which turns rejections into 4xx, an unacknowledged queue
write into 503 + Retry-After, and anything unexpected into 503 too: a client that retries loses
nothing, while a 500 (or a 400 for our own bug) could make it drop events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from cmrelay.keys import Keys
from cmrelay.metrics import render as render_metrics
from cmrelay.metrics import scrape_client
from cmrelay.redis_conn import connect_async
from cmrelay.settings import Settings
from ingest.errors import IngestRejection, QueueUnavailable
from ingest.handlers import Answer, Ingest
from ingest.metrics import CONTENT_TYPE, FLUSH_INTERVAL, METRICS_STATE, IngestMetrics
from ingest.openapi import build_spec
from ingest.queue import RETRY_AFTER_UNREACHABLE, QueueWriter

log = logging.getLogger("cmrelay.ingest")
TRACKING_TYPES = ("identify", "group", "track", "page", "screen", "alias")
Handler = Callable[[Request], Awaitable[Answer]]


def redis_for(settings: Settings) -> aioredis.Redis:
    """The ingest's Redis client: short timeouts, so a dead Redis becomes a quick 503."""
    return connect_async(
        settings.redis_url,
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
        # One retry on a broken pooled connection (e.g. after a Redis restart), no backoff.
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


def create_app(settings: Settings, redis_client: aioredis.Redis | None = None) -> Starlette:
    """The ingest app; it closes the Redis client at shutdown only if it created it."""
    client = redis_client if redis_client is not None else redis_for(settings)
    keys = Keys(settings.key_prefix)
    queue = QueueWriter(client, keys, settings.ingest_high_water)
    metrics = IngestMetrics()
    scrape = scrape_client(settings.redis_url)
    ingest = Ingest(settings, queue, metrics)
    spec = orjson.dumps(build_spec())

    def post(path: str, endpoint: str, handler: Handler) -> Route:
        return Route(path, _answer(endpoint, handler, metrics), methods=["POST"])

    routes = [post(f"/v1/{kind}", kind, _single(ingest, kind)) for kind in TRACKING_TYPES]
    routes += [
        post("/v1/batch", "batch", ingest.batch),
        post("/webhook", "webhook", ingest.webhook),
        post("/chartmogul", "chartmogul", ingest.chartmogul),
        Route("/health", _health, methods=["GET"]),
        Route("/ready", _ready(queue), methods=["GET"]),
        Route("/metrics", _metrics(client, scrape, settings, metrics), methods=["GET"]),
        Route("/openapi.json", _static_json(spec), methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        flusher = asyncio.create_task(_flush_forever(client, keys, metrics))
        # The lifespan state is what uvicorn hands each connection's protocol: ingest/protocol.py
        # counts the connections it refuses on these metrics.
        yield {METRICS_STATE: metrics}
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        with contextlib.suppress(RedisError, OSError):
            await metrics.flush(client, keys)  # the last counts of a clean shutdown
        scrape.close()
        if redis_client is None:
            await client.aclose()

    return Starlette(routes=routes, lifespan=lifespan)


def _single(ingest: Ingest, kind: str) -> Handler:
    async def handler(request: Request) -> Answer:
        return await ingest.single(request, kind)

    return handler


def _answer(
    endpoint: str, handler: Handler, metrics: IngestMetrics
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint_fn(request: Request) -> Response:
        started = time.perf_counter()
        headers: dict[str, str] = {}
        try:
            status, body = await handler(request)
            outcome = "partial" if body.get("rejected") else "accepted"
        except IngestRejection as exc:
            status, body, outcome = exc.status, exc.body(), exc.code
            if exc.code in {"invalid_payload", "payload_too_large"}:
                metrics.rejected.labels(endpoint, exc.code).inc()
            # Which client was refused and why, never the body (it may hold personal data).
            log.info("ingest %s: answering %d %s", endpoint, status, exc.code,
                     extra={"client": request.client.host if request.client else None})  # fmt: skip
        except ClientDisconnect:
            status, body, outcome = 400, {"success": False, "code": "disconnected"}, "disconnected"
        except QueueUnavailable as exc:
            log.warning("ingest %s: answering 503: %s", endpoint, exc.message)
            status, outcome = 503, "unavailable"
            body = {"success": False, "code": "unavailable", "message": exc.message}
            headers["Retry-After"] = str(exc.retry_after)
        except Exception as exc:  # the last line of defence: never a 500, never a traceback out
            log.exception("ingest %s: unexpected %s", endpoint, type(exc).__name__)
            status, outcome = 503, "internal_error"
            body = {"success": False, "code": "internal_error", "message": "try again later"}
            headers["Retry-After"] = str(RETRY_AFTER_UNREACHABLE)
        metrics.requests.labels(endpoint, outcome).inc()
        response = _json(status, body, headers)
        metrics.observe(endpoint, status, time.perf_counter() - started)
        return response

    return endpoint_fn


async def _health(request: Request) -> Response:
    return _json(200, {"status": "ok"})


def _ready(queue: QueueWriter) -> Callable[[Request], Awaitable[Response]]:
    async def ready(request: Request) -> Response:
        try:
            status = await queue.status()
        except QueueUnavailable as exc:
            down = {"ready": False, "reason": exc.message, "paused": None}
            return _json(503, down, {"Retry-After": str(exc.retry_after)})
        body: dict[str, Any] = {
            "ready": not status.full and status.write_problem is None,
            "queue_length": status.length,
            "high_water": status.high_water,
            # A delivery pause (bad ChartMogul credentials) is reported, but the ingest can
            # still queue safely, so it does not make the ingest unready.
            "paused": status.pause,
        }
        if status.write_problem is not None:  # every queue write would get 503 now
            body["reason"] = status.write_problem
            return _json(503, body, {"Retry-After": str(RETRY_AFTER_UNREACHABLE)})
        if status.full:
            body["reason"] = "the queue is above its high-water mark"
            return _json(503, body, {"Retry-After": "30"})
        return _json(200, body)

    return ready


async def _flush_forever(client: aioredis.Redis, keys: Keys, metrics: IngestMetrics) -> None:
    while True:
        await asyncio.sleep(FLUSH_INTERVAL)
        # On failure the counts stay buffered; /ready and the queue writes report the outage.
        with contextlib.suppress(RedisError, OSError):
            await metrics.flush(client, keys)


def _metrics(
    client: aioredis.Redis, scrape_client: redis.Redis, settings: Settings, metrics: IngestMetrics
) -> Callable[[Request], Awaitable[Response]]:
    keys, ttl = Keys(settings.key_prefix), settings.heartbeat_ttl

    async def render(request: Request) -> Response:
        with contextlib.suppress(RedisError, OSError):
            await metrics.flush(client, keys)  # so a scrape sees this process's latest counts
        # The collector's reads are blocking: off the event loop, so requests keep flowing.
        body = await asyncio.to_thread(render_metrics, scrape_client, keys, ttl)
        return Response(body, media_type=CONTENT_TYPE)

    return render


def _static_json(content: bytes) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return Response(content, media_type="application/json")

    return serve


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")
