"""A test double: a small deliverer for the engine's own tests over real HTTP.

CMRELAY_DELIVERER="tests.doubles.recording_deliverer:build" makes workers use it. It keeps one
record per entity at CHARTMOGUL_WEBHOOK_URL: GET to look it up, POST to create, PATCH to update;
every trait is an attribute with last-writer-wins by Segment timestamp, like the real deliverers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from cmrelay.errors import ConfigurationError, PermanentDeliveryError, RetryableDeliveryError
from worker.delivery.contract import DeliveryContext, DeliveryOutcome, EventResult, RequestGate
from worker.delivery.http import error_for_status, parse_retry_after

REJECT_TRAIT = "relay_test_reject"  # an event carrying this trait is refused (partial DLQ)


def build(context: DeliveryContext) -> RecordingDeliverer:
    """Factory named by CMRELAY_DELIVERER."""
    settings, gate = context.settings, context.gate
    if not settings.chartmogul_webhook_url:
        raise ConfigurationError("the recording deliverer needs CHARTMOGUL_WEBHOOK_URL")
    url = settings.chartmogul_webhook_url.reveal()
    return RecordingDeliverer(url, gate, settings.request_timeout)


def clock_time(event: Mapping[str, Any]) -> str:
    """The event's Segment timestamp as sortable UTC text (the clock's format)."""
    try:
        parsed = datetime.fromisoformat(str(event.get("timestamp")))
    except ValueError:
        parsed = datetime(1970, 1, 1, tzinfo=UTC)
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="microseconds")


def merge(
    events: Sequence[Mapping[str, Any]], clock: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Per trait, the value of the newest event, unless the clock already holds a newer one."""
    attrs: dict[str, Any] = {}
    updates: dict[str, str] = {}
    for event in events:
        ts = clock_time(event)
        traits = event.get("traits") or {}
        for key, value in traits.items() if isinstance(traits, Mapping) else ():
            path = f"trait:{key}"
            if ts > clock.get(path, "") and ts >= updates.get(path, ""):
                attrs[key] = value
                updates[path] = ts
    return attrs, updates


def plan_upsert(
    entity: str, events: Sequence[Mapping[str, Any]], clock: Mapping[str, str]
) -> list[Mapping[str, Any]]:
    """The one operation a delivery makes: upsert the merged attributes."""
    attrs, _ = merge(events, clock)
    return [{"op": "upsert", "entity": entity, "attributes": attrs}]


class RecordingDeliverer:
    """Deliverer protocol over a trivial REST resource, through the shared RequestGate."""

    def __init__(self, base_url: str, gate: RequestGate, timeout: float = 10.0) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout)
        self._gate = gate

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        with self._gate.acquire():
            try:
                response = self._client.request(method, path, json=body)
            except httpx.HTTPError as exc:
                raise RetryableDeliveryError(f"{type(exc).__name__} calling the recorder") from None
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        self._gate.observe(response.status_code, retry_after)
        if response.is_success or (method == "GET" and response.status_code == 404):
            return response
        # The product's own classification: the double must retry and pause exactly as it does.
        raise error_for_status(
            response.status_code,
            response.text[:500],
            what=f"recorder {method} {path}",
            retry_after=retry_after,
        )

    def deliver(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> DeliveryOutcome:
        """Create or update the entity with the merged attributes."""
        results = [
            EventResult(str(e["messageId"]), "failed", "rejected by test trait",
                        PermanentDeliveryError("rejected by test trait", status=422))
            for e in events if _rejected(e)
        ]  # fmt: skip
        good = [e for e in events if not _rejected(e)]
        attrs, updates = merge(good, clock)
        body = {"attributes": attrs, "message_ids": [str(e["messageId"]) for e in good]}
        exists = self._call("GET", f"/entities/{entity}").status_code == 200
        calls = 1
        if not exists:
            self._call("POST", f"/entities/{entity}", body)
            calls += 1
        elif attrs:
            self._call("PATCH", f"/entities/{entity}", body)
            calls += 1
        plan = self.planned_operations(entity, good, clock)
        return DeliveryOutcome(updates, calls, results, plan)

    def planned_operations(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> Sequence[Mapping[str, Any]]:
        """The upsert this delivery would make."""
        return plan_upsert(entity, events, clock)

    def probe(self) -> None:
        """GET /ping through the same error mapping."""
        self._call("GET", "/ping")

    def close(self) -> None:
        """Close the HTTP pool."""
        self._client.close()


def _rejected(event: Mapping[str, Any]) -> bool:
    traits = event.get("traits")
    return isinstance(traits, Mapping) and bool(traits.get(REJECT_TRAIT))
