"""Per-process engine state: settings, one Redis client, key names, scripts, gate, deliverer."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis

from cmrelay.keys import Keys
from cmrelay.redis_conn import connect
from config.settings import Settings
from worker.delivery import Deliverer, load_deliverer
from worker.limiter import RedisRequestGate
from worker.mapping import MappingPolicy, load_mapping_policy
from worker.scripts import Scripts


@dataclass
class Engine:
    """Everything the accept, schedule and deliver steps share inside one worker process."""

    settings: Settings
    redis: redis.Redis
    keys: Keys
    scripts: Scripts
    gate: RedisRequestGate
    _deliverer: Deliverer | None = None
    _policy: MappingPolicy | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Engine:
        """Connect (lazily, as redis-py does) and name everything."""
        client = connect(settings.redis_url, health_check_interval=30)
        keys = Keys(settings.key_prefix)
        scripts = Scripts(client)
        gate = RedisRequestGate.from_settings(settings, scripts, keys)
        return cls(settings=settings, redis=client, keys=keys, scripts=scripts, gate=gate)

    @property
    def deliverer(self) -> Deliverer:
        """Built on first use, so a worker that only accepts needs no delivery settings."""
        with self._lock:
            if self._deliverer is None:
                self._deliverer = load_deliverer(self.settings, self.gate)
            return self._deliverer

    @property
    def policy(self) -> MappingPolicy:
        """The mapping policy, read once (MAPPING_FILE is read at worker start, not per event)."""
        with self._lock:
            if self._policy is None:
                self._policy = load_mapping_policy(self.settings)
            return self._policy

    @property
    def lease_ttl(self) -> float:
        """Entity lease: well under VISIBILITY_TIMEOUT so a dead holder lapses before re-run."""
        return max(1.0, min(30.0, self.settings.visibility_timeout / 2))

    @property
    def claim_timeout(self) -> float:
        """How long a claimed entity or accept batch may stay silent before it comes back."""
        return self.settings.visibility_timeout

    def close(self) -> None:
        """Close the deliverer and the Redis pool."""
        if self._deliverer is not None:
            self._deliverer.close()
        self.redis.close()
