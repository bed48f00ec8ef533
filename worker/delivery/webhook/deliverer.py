"""DELIVERY_MODE=webhook: each event as the ChartMogul (Actions) payload, in order, newest wins.

The webhook takes one payload per event (no coalescing is possible), so the clock is kept per
user / group: an event older than the last one sent for the same user or group is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from cmrelay.errors import PermanentDeliveryError
from worker.delivery.contract import DeliveryContext, DeliveryOutcome, EventResult
from worker.delivery.counting import CountingGate
from worker.delivery.webhook.client import WebhookClient
from worker.delivery.webhook.payloads import actions_payloads
from worker.mapping import clock_time
from worker.mapping.routing import external_id

log = logging.getLogger(__name__)
REJECTED = "the ChartMogul (Actions) destination would reject this event"


def build(context: DeliveryContext) -> WebhookDeliverer:
    """The deliverer for DELIVERY_MODE=webhook."""
    counting = CountingGate(context.gate)
    return WebhookDeliverer(WebhookClient.from_settings(context.settings, counting), counting)


def clock_path(event: Mapping[str, Any]) -> str:
    """Whose state an event sets: the user of an Identify, the group of a Group call."""
    if event.get("type") == "group":
        return f"webhook:group:{external_id(event.get('groupId'))}"
    subject = external_id(event.get("userId")) or external_id(event.get("anonymousId"))
    return f"webhook:user:{subject}"


class WebhookDeliverer:
    """The Deliverer protocol over WebhookClient."""

    def __init__(self, client: WebhookClient, counting: CountingGate | None = None) -> None:
        self.client = client
        self.counting = counting or CountingGate(None)

    def deliver(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> DeliveryOutcome:
        """Send each event in timestamp order; a refused one fails alone (partial DLQ)."""
        self.counting.reset()
        sent = {path: clock_time(value) for path, value in clock.items()}
        updates: dict[str, str] = {}
        results: list[EventResult] = []
        ops: list[dict[str, Any]] = []
        for event in events:
            message_id = str(event.get("messageId", ""))
            path, when = clock_path(event), clock_time(event.get("timestamp"))
            if sent.get(path, "") > when:
                results.append(EventResult(message_id, "skipped", f"older than {path} sent"))
                continue
            payload = actions_payloads(event)
            if payload is None:
                results.append(EventResult(message_id, "skipped", REJECTED))
                continue
            ops.append({"op": "webhook", "payload": payload})
            try:
                self.client.send(payload)
            except PermanentDeliveryError as exc:
                results.append(EventResult(message_id, "failed", exc.message, exc))
                continue
            sent[path] = updates[path] = when
        return DeliveryOutcome(updates, self.counting.calls, results, ops)

    def planned_operations(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> Sequence[Mapping[str, Any]]:
        """The payloads a delivery would post (pure)."""
        payloads = (actions_payloads(e) for e in events)
        return [{"op": "webhook", "payload": p} for p in payloads if p is not None]

    def probe(self) -> None:
        """POST {} as Segment's connection test does: it checks the URL without recording."""
        self.client.send({})

    def close(self) -> None:
        """Close the HTTP pool."""
        self.client.close()
