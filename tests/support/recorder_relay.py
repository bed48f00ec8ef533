"""Shared pieces of the end-to-end tests: the relay under test, seen from outside."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from cmrelay.dlq.entry import DlqEntry
from cmrelay.dlq.store import DeadLetterQueue, DlqFilter
from cmrelay.keys import Keys
from cmrelay.settings import Settings, load_settings
from tests.doubles.recorder import Recorder
from tests.support.events import envelope
from tests.support.processes import FAST_ENGINE_ENV, WorkerProcesses, wait_for
from tests.support.relay_state import entity_state, settled


@dataclass
class Relay:
    """Workers + recorder + a client view of the relay's Redis."""

    settings: Settings
    client: redis.Redis
    keys: Keys
    recorder: Recorder
    workers: WorkerProcesses
    dlq: DeadLetterQueue

    def push(self, *items: bytes) -> None:
        """What the ingest does: LPUSH envelopes on the ingest list."""
        self.client.lpush(self.keys.ingest_queue, *items)

    def settled(self, entity: str) -> bool:
        """Nothing pending or scheduled for the entity."""
        return settled(self.client, self.keys, entity)

    def wait_delivered(self, entity: str, message_ids: list[str], timeout: float = 20) -> None:
        try:
            wait_for(
                lambda: (
                    set(message_ids) <= set(self.recorder.applied.get(entity, []))
                    and self.settled(entity)
                ),
                timeout,
                f"{message_ids} delivered to {entity}",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe(entity)}") from None

    def describe(self, entity: str) -> str:
        """Everything known about an entity, for a failure message."""
        calls = [(c.method, c.path, c.status) for c in self.recorder.calls_for(entity)]
        state = entity_state(self.client, self.keys, entity)
        applied = self.recorder.applied.get(entity)
        return f"calls={calls}\napplied={applied}\n{state}\n{self.workers.logs()[-3000:]}"

    def dead_letters(self, entity: str) -> list[DlqEntry]:
        return self.dlq.list(DlqFilter(entity=entity))

    def counter(self, name: str) -> int:
        return int(self.client.hget(self.keys.counters, name) or 0)


def new_entity() -> tuple[str, str]:
    """A fresh customer id and its entity key."""
    cid = f"c{uuid.uuid4().hex[:10]}"
    return cid, f"customer:{cid}"


def company_event(cid: str, **kwargs: Any) -> bytes:
    """An Identify naming its company: routed to customer:<cid>."""
    traits = {"company": {"id": cid}, **kwargs.pop("traits", {})}
    return envelope(traits=traits, **kwargs)


def message_id(raw: bytes) -> str:
    import orjson

    return str(orjson.loads(raw)["event"]["messageId"])


def start_relay(
    redis_url: str, log_dir: Path, workers: int = 2, concurrency: int = 4, **env: str
) -> Iterator[Relay]:
    """Recorder, settings and worker processes for one test module; torn down afterwards."""
    recorder = Recorder().start()
    config = log_dir / "relay.toml"
    config.write_text("")
    full_env = {
        **FAST_ENGINE_ENV,
        "REDIS_URL": redis_url,
        "CMRELAY_KEY_PREFIX": f"e2e{uuid.uuid4().hex[:6]}",
        "CHARTMOGUL_WEBHOOK_URL": recorder.url,
        "CMRELAY_CONFIG": str(config),
        **env,
    }
    settings = load_settings(full_env)
    client = redis.Redis.from_url(redis_url)
    keys = Keys(settings.key_prefix)
    procs = WorkerProcesses(full_env, log_dir)
    relay = Relay(settings, client, keys, recorder, procs,
                  DeadLetterQueue(client, keys, settings.dlq_retention))  # fmt: skip
    procs.start(workers, concurrency)
    try:
        cid, entity = new_entity()
        warmup = company_event(cid)
        relay.push(warmup)
        relay.wait_delivered(entity, [message_id(warmup)], timeout=60)
        yield relay
    finally:
        procs.stop()
        recorder.stop()
        client.close()
