"""What the API deliverer remembers in Redis: ChartMogul uuids by external id, attribute types."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, cast

import redis

from cmrelay.keys import Keys
from worker.mapping import AttrType, Dropped
from worker.mapping.model import ATTR_TYPES
from worker.mapping.types import parse_timestamp

log = logging.getLogger(__name__)


class RelayCache:
    """ChartMogul uuids by external id and custom attribute types, shared by every worker."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def get(self, kind: str, key: str) -> str | None:
        """The cached uuid of a customer/contact, or None."""
        value: Any = self.redis.hget(self.keys.uuid_cache(kind), key)
        return value.decode() if value is not None else None

    def put(self, kind: str, key: str, uuid: str) -> None:
        """Remember a uuid (uuids are stable: no TTL)."""
        self.redis.hset(self.keys.uuid_cache(kind), key, uuid)

    def drop(self, kind: str, key: str) -> None:
        """Forget a uuid ChartMogul no longer knows (404)."""
        self.redis.hdel(self.keys.uuid_cache(kind), key)

    def types(self) -> dict[str, AttrType]:
        """Custom attribute key -> type, as learned so far."""
        raw: Any = self.redis.hgetall(self.keys.custom_attr_types)
        out: dict[str, AttrType] = {}
        for key, value in raw.items():
            kind = value.decode()
            if kind in ATTR_TYPES:
                out[key.decode()] = cast(AttrType, kind)
        return out

    def learn(self, types: Mapping[str, AttrType]) -> None:
        """Record types ChartMogul holds (a key's type is fixed account-wide once created)."""
        if types:
            self.redis.hset(
                self.keys.custom_attr_types, mapping={k: str(t) for k, t in types.items()}
            )

    def count_dropped(self, dropped: Iterable[Dropped], where: str) -> None:
        """Count and log attributes left out; never fatal."""
        items = list(dropped)
        if not items:
            return
        for item in items:
            log.info("%s: left out %s: %s", where, item.field, item.reason)
        self.redis.hincrby(self.keys.counters, "dropped_attributes", len(items))


def type_of_value(value: Any) -> AttrType | None:
    """The type a stored custom value reveals, when unambiguous (a date-like text is not)."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, float) and not value.is_integer():
        return "Decimal"  # 3 or 3.0 may be Integer or Decimal in JSON: not a clue
    if isinstance(value, str) and parse_timestamp(value) is None:
        return "String"
    return None
