"""The sandbox's start-up options: one frozen object built by the CLI or by tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.behaviour import Behaviour

# ChartMogul's documented limits: 40 requests in any second, 20 parallel connections.
DEFAULT_RATE_LIMIT = 40
DEFAULT_MAX_IN_FLIGHT = 20


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox behaves when it starts (and after POST /_sandbox/reset)."""

    api_key: str | None = None
    """The only API key accepted; None accepts any non-empty key."""
    rate_limit: int = DEFAULT_RATE_LIMIT
    """Requests per key in any 1 s sliding window before 429; 0 switches the limit off."""
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    """Concurrent requests before 503; 0 switches the limit off."""
    latency: float = 0.0
    """Seconds added to every API request (the lower bound when latency_max is set)."""
    latency_max: float | None = None
    """When set, latency is drawn uniformly from [latency, latency_max]."""
    error_rates: dict[int, float] = field(default_factory=dict)
    """Status code -> probability that an API request answers with it."""
    webhook_token: str | None = None
    """The only token accepted by the Segment webhook receiver; None accepts any."""
    data_source_uuid: str | None = None
    """A data source created at start and after every reset, with this fixed uuid (ds_...)."""
    data_source_name: str = "Segment"
    """The name of that data source."""
    seed: int | None = None
    """Seed of the fault dice, for reproducible runs."""
    behaviour: Behaviour = field(default_factory=Behaviour)
    """Answers where ChartMogul's rule is a choice (lookups after merges, dropped fields, ...)."""

    def __repr__(self) -> str:
        # The key is a secret even in a sandbox: users may try it with a real one first.
        return (
            f"SandboxConfig(api_key={'***' if self.api_key else None}, "
            f"rate_limit={self.rate_limit}, max_in_flight={self.max_in_flight}, "
            f"latency={self.latency}, latency_max={self.latency_max}, "
            f"error_rates={self.error_rates}, behaviour={self.behaviour})"
        )
