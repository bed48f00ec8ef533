"""`cmrelay resync`: forget what the relay holds for customers, re-read ChartMogul and send the
relay's view again, each under its entity's lease so no delivery runs beside it."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from typing import Any, Protocol

from cmrelay.keys import entity_key
from worker.delivery.contract import DeliveryOutcome
from worker.delivery.limiter import delivery_lane
from worker.pipeline.deliver import LeaseKeeper
from worker.pipeline.engine import Engine

log = logging.getLogger(__name__)


class Resyncable(Protocol):
    """A deliverer that can send its view of a customer again (the REST API one)."""

    def resync(self, entity: str) -> DeliveryOutcome:
        """Forget, re-read ChartMogul, send the view again."""
        ...


def held_entities(engine: Engine, since: float | None = None) -> Iterator[str]:
    """Every customer entity the relay holds a confirmed-state record for; with `since`
    (seconds), only those confirmed within that long (the record's TTL tells when)."""
    prefix = engine.keys.confirmed("")
    ttl_ms = engine.settings.confirmed_state_ttl * 1000
    for raw in engine.redis.scan_iter(match=engine.keys.confirmed("*"), count=1000):
        key: Any = raw.decode() if isinstance(raw, bytes) else raw
        if since is not None:
            left = int(engine.redis.pttl(key))
            if left < 0 or ttl_ms - left > since * 1000:
                continue
        yield entity_key(key[len(prefix) :])


def resync_entity(engine: Engine, entity: str) -> str:
    """Resync one entity; returns what happened, for the CLI."""
    deliverer = engine.deliverer
    if not hasattr(deliverer, "resync"):
        return "nothing to do: DELIVERY_MODE=webhook keeps no view of ChartMogul"
    resyncable: Resyncable = deliverer  # type: ignore[assignment]
    token = secrets.token_hex(8)
    keeper = LeaseKeeper(engine, entity, token)
    if not keeper.acquire():
        return "busy: a worker is delivering it; try again"
    keeper.start()
    try:
        with delivery_lane("backfill"):  # live traffic keeps its share of the rate
            outcome = resyncable.resync(entity)
    finally:
        keeper.stop()
        # Hand the entity back: a delivery of anything that queued meanwhile runs next.
        if engine.redis.get(engine.keys.lease(entity)) == token.encode():
            engine.redis.delete(engine.keys.lease(entity))
        engine.redis.zadd(engine.keys.due, {entity: 0})
    failed = [r for r in outcome.results if r.status == "failed"]
    note = f", {len(failed)} contact(s) refused" if failed else ""
    return f"resynced with {outcome.calls} call(s){note}"
