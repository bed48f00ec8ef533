"""The ASGI layer in front of the routes: auth, limits, faults and counters, in that order."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import math
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from starlette.routing import Match
from starlette.types import Message, Receive, Scope, Send

from sandbox.faults import plain_error
from sandbox.limits import RATE_LIMITED, TOO_MANY_PARALLEL

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from sandbox.live import Sandbox

UNAUTHORIZED = {"code": 401, "message": "No valid API key provided", "param": None}


def api_key(scope: Scope) -> str | None:
    """The HTTP Basic username (ChartMogul's API key), or None."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, encoded = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            return decoded.partition(":")[0] or None
    return None


def retry_after_header(seconds: float | None) -> dict[str, str] | None:
    """A Retry-After header: whole seconds, rounded up (clients reject fractions)."""
    return None if seconds is None else {"retry-after": str(math.ceil(seconds))}


async def respond(
    send: Send, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
) -> None:
    """Send a complete response."""
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, body: dict[str, Any], extra: dict[str, str] | None = None
) -> None:
    """Send a JSON response."""
    await respond(send, status, json.dumps(body).encode(), "application/json", extra)


async def read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a receive that replays it to the routes."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body, replayed = b"".join(chunks), False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def reset_connection(send: Send) -> None:
    """Drop the TCP connection with a RST, as a crashed edge would."""
    # uvicorn hands the app a bound method of its request cycle, which holds the transport.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:  # not under uvicorn: an unfinished response is the closest thing
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ConnectionResetError("sandbox outage")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let connection_lost run so uvicorn sees a client gone, not an app that never answered.
    for _ in range(3):
        await asyncio.sleep(0)


class Gate:
    """Wraps the Starlette app: /v1 gets auth, limits and faults; the webhook gets faults."""

    def __init__(self, sandbox: Sandbox, inner: Starlette) -> None:
        self.sandbox = sandbox
        self.inner = inner

    def label(self, scope: Scope) -> str:
        """The endpoint name counted in the stats: method and route template."""
        method = scope["method"]
        for route in self.inner.router.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return f"{method} {getattr(route, 'path', '?')}"
        return f"{method} (no route)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "sandbox.arrived": time.monotonic()}  # what the rate limit counts
        self.sandbox.store.settle(time.monotonic())  # merges due by now are done before it
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox/"):
            await self.inner(scope, receive, send)
            return
        status, arrived = 0, time.time()
        body, receive = await read_body(receive)
        query = scope.get("query_string", b"").decode("latin-1")
        scope = {**scope, "sandbox.match_text": f"{scope['path']}?{query}\n" + body.decode(
            "utf-8", "replace")}  # fmt: skip

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if scope["path"].startswith("/v1/"):
                await self._api(scope, receive, counting_send, send)
            else:
                await self._faulty(scope, receive, counting_send, send)
        finally:
            self.sandbox.stats.record(self.label(scope), status)
            request = (scope["method"], scope["path"], query)
            self.sandbox.requests.add(arrived, request, status, body)

    async def _api(self, scope: Scope, receive: Receive, send: Send, raw_send: Send) -> None:
        sandbox = self.sandbox
        key = api_key(scope)
        expected = sandbox.config.api_key
        if key is None or (expected is not None and key != expected):
            await respond_json(send, 401, UNAUTHORIZED)
            return
        extra = retry_after_header(sandbox.faults.retry_after)
        if not sandbox.in_flight.acquire():
            await respond_json(send, 503, TOO_MANY_PARALLEL, extra)
            return
        try:
            if not sandbox.rate.allow(key, scope.get("sandbox.arrived")):
                await respond_json(send, 429, RATE_LIMITED, extra)
                return
            await self._faulty(scope, receive, send, raw_send)
        finally:
            sandbox.in_flight.release()

    async def _faulty(self, scope: Scope, receive: Receive, send: Send, raw_send: Send) -> None:
        faults = self.sandbox.faults
        delay = faults.delay()
        if delay > 0:
            await asyncio.sleep(delay)
        outage = faults.outage()
        if outage == "reset":
            await reset_connection(raw_send)
            return
        rule = None if outage else faults.rules.take(scope["method"], scope["sandbox.match_text"])
        if rule is not None and rule.latency > 0:
            await asyncio.sleep(rule.latency)
        if outage:
            injected: int | None = 500
        elif rule is not None and rule.status is not None:
            injected = rule.status
        else:
            injected = faults.pick_error()
        retry_after = faults.retry_after
        if rule is not None and rule.retry_after is not None:
            retry_after = rule.retry_after
        if injected is None:
            await self.inner(scope, receive, send)
        elif injected == 429:
            await respond_json(send, 429, RATE_LIMITED, retry_after_header(retry_after))
        elif injected >= 500:
            await respond(send, injected, plain_error(injected), "text/plain")
        else:
            phrase = plain_error(injected).decode().partition(" ")[2]
            body = {"code": injected, "message": phrase, "param": None}
            await respond_json(send, injected, body, retry_after_header(retry_after))
