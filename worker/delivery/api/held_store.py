"""Redis side of the confirmed-state record, and the create-first / lookup-first switch."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import redis

from cmrelay.keys import Keys
from worker.delivery.api.held import Held

log = logging.getLogger(__name__)

LOOKUP_FIRST_AT = 3  # creates in a row that met an existing customer: a migration is running
SCORE_CAP = 10  # how far evidence accumulates, so new customers switch it back soon
UNSTORED_LOG_SECONDS = 3600


class HeldStore:
    """Per customer, what ChartMogul confirmed holding (off when `ttl` is 0)."""

    def __init__(self, client: redis.Redis, keys: Keys, ttl: float) -> None:
        self.redis = client
        self.keys = keys
        self.ttl = ttl

    @property
    def enabled(self) -> bool:
        """Whether the record is kept at all."""
        return self.ttl > 0

    def load(self, external_id: str) -> Held | None:
        """The record of a customer, or None (never seen, expired, dropped or off)."""
        if not self.enabled:
            return None
        raw: Any = self.redis.get(self.keys.confirmed(external_id))
        return Held.from_bytes(raw) if raw is not None else None

    def save(self, external_id: str, held: Held) -> None:
        """Keep the record for `ttl` seconds from now."""
        if self.enabled:
            self.redis.set(
                self.keys.confirmed(external_id), held.to_bytes(), px=int(self.ttl * 1000)
            )

    def drop(self, *external_ids: str) -> None:
        """Forget customers' records (the next delivery reads ChartMogul again)."""
        if external_ids:
            self.redis.delete(*(self.keys.confirmed(e) for e in external_ids))

    def drop_all(self) -> int:
        """Forget every record; the number dropped."""
        dropped = 0
        batch: list[Any] = []
        for key in self.redis.scan_iter(match=self.keys.confirmed("*"), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                dropped += int(self.redis.delete(*batch))
                batch = []
        if batch:
            dropped += int(self.redis.delete(*batch))
        return dropped

    def count_unstored(self, names: Iterable[str], where: str) -> None:
        """Count values ChartMogul did not keep; log each field name at most hourly (no values)."""
        items = list(names)
        if not items:
            return
        self.redis.hincrby(self.keys.counters, "dropped_by_chartmogul", len(items))
        for name in dict.fromkeys(items):
            if self.redis.set(self.keys.unstored_logged(name), 1, nx=True, ex=UNSTORED_LOG_SECONDS):
                log.info("%s: ChartMogul did not keep %s (counted in dropped_by_chartmogul)",
                         where, name)  # fmt: skip


class CreateMode:
    """Create first while creates succeed; look up first while they keep meeting customers that
    already exist (a migration), so neither case pays for the other's order."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.key = keys.create_mode

    def lookup_first(self) -> bool:
        """Whether recent creates mostly met existing customers."""
        raw: Any = self.redis.get(self.key)
        return int(raw or 0) >= LOOKUP_FIRST_AT

    def existed(self) -> None:
        """A create or lookup met a customer that already existed."""
        if int(self.redis.incr(self.key)) > SCORE_CAP:
            self.redis.set(self.key, SCORE_CAP)

    def was_new(self) -> None:
        """A customer turned out to be new."""
        if int(self.redis.decr(self.key)) < 0:
            self.redis.set(self.key, 0)
