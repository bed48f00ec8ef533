"""`Sandbox`: the live parts of one running sandbox, shared by its routes and its gate."""

from __future__ import annotations

from sandbox.config import SandboxConfig
from sandbox.faults import Faults, Stats
from sandbox.limits import InFlight, RateLimiter
from sandbox.request_log import RequestLog
from sandbox.state import Store


class Sandbox:
    """The live parts of one sandbox: its store, limits, faults and counters."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = self._seeded_store()
        self.stats = Stats()
        self.faults = Faults(config)
        self.rate = RateLimiter(config.rate_limit)
        self.in_flight = InFlight(config.max_in_flight)
        self.requests = RequestLog()
        self.behaviour = config.behaviour

    def _seeded_store(self) -> Store:
        store = Store()
        if self.config.data_source_uuid:
            store.add_data_source(self.config.data_source_name, self.config.data_source_uuid)
        return store

    def reset(self) -> None:
        """Back to the start-up state; requests in flight keep their slots."""
        self.store = self._seeded_store()
        self.stats = Stats()
        self.faults = Faults(self.config)
        self.rate = RateLimiter(self.config.rate_limit)
        self.requests = RequestLog()
        self.behaviour = self.config.behaviour
        self.in_flight.limit = self.config.max_in_flight
        self.in_flight.peak = self.in_flight.current
