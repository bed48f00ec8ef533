"""Per-process engine state: settings, one Redis client, key names, scripts, gate, deliverer."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis

from cmrelay.keys import Keys
from cmrelay.lua import Scripts
from cmrelay.masking import Masker
from cmrelay.redis_conn import connect
from cmrelay.settings import Settings
from worker.delivery.contract import Deliverer, DeliveryContext
from worker.delivery.limiter import RedisRequestGate
from worker.delivery.loader import load_deliverer
from worker.mapping import MappingPolicy, load_mapping_policy
from worker.pipeline.retry import RetryPolicy


@dataclass
class Engine:
    """Everything the accept, schedule and deliver steps share inside one worker process."""

    settings: Settings
    redis: redis.Redis
    keys: Keys
    scripts: Scripts
    gate: RedisRequestGate
    masker: Masker
    _deliverer: Deliverer | None = None
    _policy: MappingPolicy | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Engine:
        """Connect (lazily, as redis-py does) and name everything."""
        client = connect(settings.redis_url, health_check_interval=30)
        scripts = Scripts(client, Keys(settings.key_prefix))
        return cls(
            settings=settings,
            redis=client,
            keys=scripts.keys,
            scripts=scripts,
            gate=RedisRequestGate.from_settings(settings, scripts),
            masker=Masker.from_settings(settings),
        )

    @property
    def deliverer(self) -> Deliverer:
        """Built on first use, so a worker that only accepts needs no delivery settings."""
        with self._lock:
            if self._deliverer is None:
                context = DeliveryContext(self.settings, self.gate, self.redis, self.policy)
                self._deliverer = load_deliverer(context)
            return self._deliverer

    @property
    def policy(self) -> MappingPolicy:
        """The mapping policy, read once (MAPPING_FILE is read at worker start, not per event)."""
        with self._lock:
            if self._policy is None:
                self._policy = load_mapping_policy(self.settings)
            return self._policy

    @property
    def retry(self) -> RetryPolicy:
        """Backoff and retry window, from the settings."""
        return RetryPolicy.from_settings(self.settings)

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
