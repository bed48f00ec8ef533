"""A real HTTP server standing in for ChartMogul: records every call, keeps entity state, and
answers with scripted failures (status, Retry-After) when a test asks for them."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    at: float  # time.monotonic() on arrival
    method: str
    path: str
    entity: str
    status: int = 0
    body: Any = None


@dataclass
class Rule:
    """Answer `status` to calls matching method/entity while `active()`; times=None = forever."""

    status: int
    entity: str | None = None
    method: str | None = None
    times: int | None = None
    until: float | None = None  # monotonic deadline
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, entity: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.until is not None and time.monotonic() >= self.until:
            return False
        return (self.entity in (None, entity)) and (self.method in (None, method))


class Recorder:
    """The server; start() binds 127.0.0.1 on a free port."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.entities: dict[str, dict[str, Any]] = {}
        self.creates: Counter[str] = Counter()
        self.applied: dict[str, list[str]] = {}
        self.rules: list[Rule] = []
        self.latency: dict[str, float] = {}  # per entity, seconds before answering
        self.hold: threading.Event | None = None  # writes wait for it (crash tests)
        self.on_write: Callable[[], None] | None = None
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Recorder:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                recorder._serve(self)

            do_GET = do_POST = do_PATCH = _handle  # noqa: N815 - http.server naming

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.rules.clear()
            self.latency.clear()
            self.hold = None

    def fail(self, status: int, **kwargs: Any) -> Rule:
        rule = Rule(status, **kwargs)
        with self.lock:
            self.rules.append(rule)
        return rule

    def calls_for(self, entity: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.entity == entity]

    def iter_calls(self) -> Iterator[Call]:
        with self.lock:
            return iter(list(self.calls))

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length)) if length else None
        path = handler.path
        entity = path.removeprefix("/entities/") if path.startswith("/entities/") else ""
        call = Call(time.monotonic(), handler.command, path, entity, body=body)
        with self.lock:
            self.calls.append(call)
            rule = next((r for r in self.rules if r.matches(handler.command, entity)), None)
            if rule is not None and rule.times is not None:
                rule.times -= 1
            delay = self.latency.get(entity, 0.0)
            hold = self.hold if handler.command != "GET" else None
        if delay:
            time.sleep(delay)  # simulated API latency
        if hold is not None:
            if self.on_write:
                self.on_write()
            hold.wait(30)
        if rule is not None:
            self._answer(handler, call, rule.status, {"error": "scripted"}, rule.headers)
            return
        status, payload = self._apply(call)
        self._answer(handler, call, status, payload, {})

    def _apply(self, call: Call) -> tuple[int, Any]:
        with self.lock:
            if call.path == "/ping":
                return 200, {"data": "pong!"}
            exists = call.entity in self.entities
            if call.method == "GET":
                return (200, self.entities[call.entity]) if exists else (404, {"error": "nf"})
            if call.method == "POST" and exists:
                return 409, {"error": "already exists"}
            if call.method == "PATCH" and not exists:
                return 404, {"error": "nf"}
            if call.method == "POST":
                self.creates[call.entity] += 1
                self.entities[call.entity] = {}
            self.entities[call.entity].update(call.body["attributes"])
            self.applied.setdefault(call.entity, []).extend(call.body["message_ids"])
            return (201 if call.method == "POST" else 200), self.entities[call.entity]

    @staticmethod
    def _answer(
        handler: BaseHTTPRequestHandler, call: Call, status: int, payload: Any,
        headers: dict[str, str],
    ) -> None:  # fmt: skip
        call.status = status
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client is gone (a killed worker)
