"""What the relay's Redis says about one entity, for the end-to-end helpers."""

from __future__ import annotations

import redis

from cmrelay.keys import Keys


def settled(client: redis.Redis, keys: Keys, entity: str) -> bool:
    """Nothing pending, scheduled or leased for the entity."""
    return (
        client.llen(keys.mailbox(entity)) == 0
        and client.zscore(keys.due, entity) is None
        and client.exists(keys.lease(entity)) == 0
    )


def entity_state(client: redis.Redis, keys: Keys, entity: str) -> str:
    """Mailbox length, due score, lease, retry state and pause, for a failure message."""
    return (
        f"mailbox={client.llen(keys.mailbox(entity))} "
        f"due={client.zscore(keys.due, entity)} "
        f"lease={client.get(keys.lease(entity))!r} "
        f"retry={client.hgetall(keys.retry_state(entity))!r} "
        f"pause={client.get(keys.pause)!r} now={client.time()}"
    )
