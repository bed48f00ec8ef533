"""Every Redis key the relay uses, in one place, each with why it lives as long as it does.

All keys share a prefix (CMRELAY_KEY_PREFIX, default "cmrelay") so that one Redis can hold
several relays, and tests can isolate themselves. Keys that must be touched together by one Lua
script carry the same hash tag-free prefix; the relay does not support Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one relay instance (one prefix)."""

    prefix: str = "cmrelay"

    # --- ingest -> worker hand-off -------------------------------------------------------
    @property
    def ingest_queue(self) -> str:
        """LIST of envelopes (LPUSH by the ingest, consumed from the right). No TTL: durable."""
        return f"{self.prefix}:ingest"

    def accepting(self, token: str) -> str:
        """LIST of envelopes one accepter has claimed; returned to the queue if it dies."""
        return f"{self.prefix}:accepting:{token}"

    @property
    def accepting_index(self) -> str:
        """ZSET token -> claim deadline; the reaper returns expired claims to the queue."""
        return f"{self.prefix}:accepting"

    # --- dedupe -----------------------------------------------------------------------------
    def dedupe(self, source: str, message_id: str) -> str:
        """STRING mark per (source, messageId); TTL DEDUPE_WINDOW (Segment's 24 h guarantee)."""
        return f"{self.prefix}:seen:{source}:{message_id}"

    # --- per-entity delivery state ------------------------------------------------------------
    def mailbox(self, entity: str) -> str:
        """LIST of pending events for one entity; trimmed only by a successful commit."""
        return f"{self.prefix}:mbox:{entity}"

    @property
    def due(self) -> str:
        """ZSET entity -> when to deliver next (coalescing and the retry schedule in one)."""
        return f"{self.prefix}:due"

    def lease(self, entity: str) -> str:
        """STRING token: one deliverer per entity; PX lease renewed while working."""
        return f"{self.prefix}:lease:{entity}"

    def attr_clock(self, entity: str) -> str:
        """HASH attribute -> timestamp of the event that last set it (last-writer-wins)."""
        return f"{self.prefix}:clock:{entity}"

    def retry_state(self, entity: str) -> str:
        """HASH attempts / first_failure / last_error for an entity that is backing off."""
        return f"{self.prefix}:retry:{entity}"

    def uuid_cache(self, kind: str) -> str:
        """HASH external id -> ChartMogul uuid (customer or contact); no TTL, uuids are stable."""
        return f"{self.prefix}:uuid:{kind}"

    @property
    def custom_attr_types(self) -> str:
        """HASH custom attribute key -> ChartMogul type, learned from the account."""
        return f"{self.prefix}:attrtypes"

    @property
    def user_groups(self) -> str:
        """HASH userId -> groupId learned from Group calls (the `group` company policy)."""
        return f"{self.prefix}:usergroup"

    def waiting_for_group(self, user_id: str) -> str:
        """LIST of Identify events held until a Group call links this user to a company."""
        return f"{self.prefix}:waitgroup:{user_id}"

    # --- limits and pause ---------------------------------------------------------------------
    @property
    def rate_bucket(self) -> str:
        """HASH token-bucket state shared by every worker on every host."""
        return f"{self.prefix}:limit:rate"

    @property
    def in_flight(self) -> str:
        """ZSET request token -> lease deadline: the global concurrency semaphore."""
        return f"{self.prefix}:limit:inflight"

    @property
    def blocked_until(self) -> str:
        """STRING epoch seconds: nobody calls ChartMogul before this (429 / Retry-After)."""
        return f"{self.prefix}:limit:blocked"

    @property
    def pause(self) -> str:
        """STRING reason: delivery is paused for everyone (401/403) until a probe succeeds."""
        return f"{self.prefix}:pause"

    # --- dead letters and counters -----------------------------------------------------------
    def dlq_entry(self, entry_id: str) -> str:
        """STRING JSON of one dead letter; TTL DLQ_RETENTION."""
        return f"{self.prefix}:dlq:entry:{entry_id}"

    @property
    def dlq_index(self) -> str:
        """ZSET entry id -> dead-lettered at (epoch seconds)."""
        return f"{self.prefix}:dlq:index"

    @property
    def counters(self) -> str:
        """HASH outcome -> count (received, ignored, skipped:<reason>, filtered, ...)."""
        return f"{self.prefix}:counters"

    @property
    def scheduler_leader(self) -> str:
        """STRING token of the worker that runs the scheduler loop; short PX lease."""
        return f"{self.prefix}:scheduler:leader"
