"""Engine fixtures: settings on the session's real Redis, an Engine, a scriptable deliverer."""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis

from cmrelay.envelope import Envelope
from config.settings import Settings
from sandbox.config import SandboxConfig
from sandbox.runner import SandboxServer
from tests.worker.http_recorder import RecordingServer
from worker.delivery import DeliveryOutcome
from worker.dlq import REASON_PERMANENT, DeadLetterQueue, attempt_record, new_entry
from worker.engine import Engine
from worker.recording_deliverer import merge, plan_upsert

_seq = itertools.count()
SANDBOX_KEY, SANDBOX_DS = "deliverer-key", "ds_deliverer"


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Fast engine settings under a prefix of their own (no flush needed between tests)."""
    return dataclasses.replace(
        Settings(),
        redis_url=redis_url,
        key_prefix=f"t{uuid.uuid4().hex[:8]}",
        coalesce_window=0.0,
        retry_backoff_base=0.01,
        retry_backoff_max=0.05,
        pause_probe_interval=0.2,
        visibility_timeout=4.0,
    )


class ScriptedDeliverer:
    """In-process Deliverer: merges like the recording one; `fail` raises instead when set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[dict[str, Any]], dict[str, str]]] = []
        self.fail: Callable[[], None] | None = None
        self.probe_error: Exception | None = None
        self.probes = 0

    def deliver(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> DeliveryOutcome:
        self.calls.append((entity, list(events), dict(clock)))
        if self.fail is not None:
            self.fail()
        _, updates = merge(events, clock)
        return DeliveryOutcome(updates, 1)

    def planned_operations(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> Sequence[Mapping[str, Any]]:
        return plan_upsert(entity, events, clock)

    def probe(self) -> None:
        self.probes += 1
        if self.probe_error is not None:
            raise self.probe_error

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """A ChartMogul sandbox over HTTP for one test module (limits off, one data source)."""
    config = SandboxConfig(
        api_key=SANDBOX_KEY, rate_limit=0, max_in_flight=0, data_source_uuid=SANDBOX_DS
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def state(sandbox: SandboxServer) -> Callable[[], Any]:
    """Empties the sandbox; returns a reader of its whole store."""
    httpx.post(f"{sandbox.control_url}/reset", timeout=5).raise_for_status()
    return lambda: httpx.get(f"{sandbox.control_url}/state", timeout=5).json()


@pytest.fixture
def deliverer() -> ScriptedDeliverer:
    return ScriptedDeliverer()


@pytest.fixture
def engine(settings: Settings, deliverer: ScriptedDeliverer) -> Iterator[Engine]:
    eng = Engine.from_settings(settings)
    eng._deliverer = deliverer
    yield eng
    eng.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def envelope(
    kind: str = "identify",
    *,
    message_id: str | None = None,
    user_id: str | None = "u1",
    group_id: str | None = None,
    traits: dict[str, Any] | None = None,
    timestamp: str | None = None,
    source: str = "wk_test",
) -> bytes:
    """One queued envelope as the ingest writes it."""
    event: dict[str, Any] = {
        "type": kind,
        "messageId": message_id or f"m{next(_seq)}-{uuid.uuid4().hex[:6]}",
        # Default: now, so events made one after another are ordered like real ones.
        "timestamp": timestamp or datetime.now(UTC).isoformat(timespec="microseconds"),
        "traits": traits or {},
    }
    if user_id is not None:
        event["userId"] = user_id
    if group_id is not None:
        event["groupId"] = group_id
    return Envelope(source, "tracking-api", "2026-01-01T00:00:00.000Z", event).to_bytes()


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    """A fresh recording HTTP server per test (delivery client tests)."""
    with RecordingServer() as srv:
        yield srv


def dead_letter(
    dlq: DeadLetterQueue,
    user: str,
    reason: str = REASON_PERMANENT,
    *,
    status: int | None = 422,
    error: str = "Unprocessable: bad country",
    age: float = 0.0,
    traits: dict[str, Any] | None = None,
) -> str:
    """Store, through the real DLQ API, an entry for customer:<user> with two recorded attempts."""
    at = time.time() - age
    entry = new_entry(
        entity=f"customer:{user}", reason=reason, error_class="PermanentDeliveryError",
        last_error=error, attempts=2, first_attempt_at=at - 1,
        envelopes=[envelope(user_id=user, message_id=f"msg-{user}", traits=traits)],
        planned_operations=[{"op": "upsert_customer", "entity": f"customer:{user}"}],
        now=at, status_code=status, last_response='{"errors":"Country is invalid"}',
        history=[attempt_record(at - 1, "RetryableDeliveryError", 503, "unavailable"),
                 attempt_record(at, "PermanentDeliveryError", status, error)],
    )  # fmt: skip
    return dlq.add(entry)
