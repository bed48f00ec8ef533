"""DELIVERY_MODE=webhook: each event as the ChartMogul (Actions) payload, as Segment sends it.

Segment's destination has no ordering logic: it posts every event, late ones included, one
request per event. So does this deliverer, in the order the events arrived (the pipeline keeps
arrival order in this mode). What Segment's validation would refuse is skipped with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from cmrelay.errors import PermanentDeliveryError
from cmrelay.keys import Keys
from worker.delivery.contract import DeliveryContext, DeliveryOutcome, EventResult
from worker.delivery.counting import CountingGate
from worker.delivery.webhook.client import WebhookClient
from worker.delivery.webhook.payloads import Refused, build_payload

log = logging.getLogger(__name__)
REJECTED = "refused by Segment's validation"


def build(context: DeliveryContext) -> WebhookDeliverer:
    """The deliverer for DELIVERY_MODE=webhook."""
    counting = CountingGate(context.gate)
    settings = context.settings
    sent = SentLog(context.redis, Keys(settings.key_prefix), ttl=int(settings.dedupe_window))
    client = WebhookClient.from_settings(settings, counting)
    return WebhookDeliverer(client, counting, sent)


class SentLog:
    """messageIds already posted by an attempt that then failed part-way, per entity.

    The pipeline retries a delivery whole; without this, the events posted before the failure
    would be posted again. Written only when an attempt fails after posting something.
    """

    def __init__(self, client: redis.Redis, keys: Keys, ttl: int) -> None:
        self._client, self._keys, self._ttl = client, keys, max(1, ttl)

    def _key(self, entity: str) -> str:
        return self._keys.webhook_sent(entity)

    def posted(self, entity: str) -> set[str]:
        """The messageIds an earlier attempt for this entity posted."""
        members: set[bytes] = self._client.smembers(self._key(entity))  # type: ignore[assignment]
        return {m.decode() for m in members}

    def remember(self, entity: str, message_ids: Sequence[str]) -> None:
        """Record what this attempt posted before it failed (kept for DEDUPE_WINDOW)."""
        pipe = self._client.pipeline(transaction=True)
        pipe.sadd(self._key(entity), *message_ids)
        pipe.expire(self._key(entity), self._ttl)
        pipe.execute()


class WebhookDeliverer:
    """The Deliverer protocol over WebhookClient."""

    def __init__(
        self,
        client: WebhookClient,
        counting: CountingGate | None = None,
        sent: SentLog | None = None,
    ) -> None:
        self.client = client
        self.counting = counting or CountingGate(None)
        self.sent = sent

    def deliver(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> DeliveryOutcome:
        """Post each event in the order given; refused ones are skipped, failed ones fail alone."""
        self.counting.reset()
        done = self.sent.posted(entity) if self.sent is not None else set()
        posted: list[str] = []
        results: list[EventResult] = []
        ops: list[dict[str, Any]] = []
        try:
            for event in events:
                message_id = str(event.get("messageId", ""))
                if message_id in done:
                    continue  # posted by an earlier attempt, or twice in this mailbox
                payload = build_payload(event)
                if isinstance(payload, Refused):
                    results.append(
                        EventResult(message_id, "skipped", f"{REJECTED}: {payload.reason}")
                    )
                    log.info("event skipped: %s", f"{REJECTED}: {payload.reason}",
                             extra={"message_id": message_id, "entity": entity})  # fmt: skip
                    continue
                ops.append({"op": "webhook", "payload": payload})
                try:
                    self.client.send(payload)
                except PermanentDeliveryError as exc:
                    results.append(EventResult(message_id, "failed", exc.message, exc))
                    continue
                done.add(message_id)
                posted.append(message_id)
        except BaseException:
            if posted and self.sent is not None:
                self.sent.remember(entity, posted)
            raise
        return DeliveryOutcome({}, self.counting.calls, results, ops)

    def planned_operations(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> Sequence[Mapping[str, Any]]:
        """The payloads a delivery would post (pure)."""
        payloads = (build_payload(e) for e in events)
        return [{"op": "webhook", "payload": p} for p in payloads if not isinstance(p, Refused)]

    def probe(self) -> None:
        """POST {} as Segment's connection test does: it checks the URL without recording."""
        self.client.send({})

    def close(self) -> None:
        """Close the HTTP pool."""
        self.client.close()
