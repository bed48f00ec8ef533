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
        """LIST of envelopes one accepter has claimed; returned to the queue if it dies.

        No TTL: the claim deadline lives in `accepting_index`, and the reaper (not expiry) must
        move the items back, or they would be lost.
        """
        return f"{self.prefix}:accepting:{token}"

    @property
    def accepting_index(self) -> str:
        """ZSET token -> claim deadline; the reaper returns expired claims to the queue."""
        return f"{self.prefix}:accepting"

    # --- dedupe -----------------------------------------------------------------------------
    def dedupe(self, source: str, message_id: str) -> str:
        """STRING mark per (source, messageId); TTL DEDUPE_WINDOW (Segment's 24 h guarantee).

        Set in the same Lua step that appends the event to its mailbox, so a mark never exists
        without its event durably queued (the classic loss: mark first, then fail the hand-off).
        """
        return f"{self.prefix}:seen:{source}:{message_id}"

    # --- per-entity delivery state ------------------------------------------------------------
    def mailbox(self, entity: str) -> str:
        """LIST of pending envelopes for one entity; no TTL: trimmed only by a commit or DLQ."""
        return f"{self.prefix}:mbox:{entity}"

    @property
    def due(self) -> str:
        """ZSET entity -> when to deliver next (coalescing and the retry schedule in one).

        No TTL. A claimed entity is re-scored to now + VISIBILITY_TIMEOUT (pushed on by the lease
        heartbeat), so a lost deliver task comes back by itself.
        """
        return f"{self.prefix}:due"

    @property
    def due_live(self) -> str:
        """ZSET entity -> a time at or before its due time: entities with live (not backfilled)
        events, which the scheduler claims before the rest of `due` (live-first claiming).

        No TTL. Only a hint: `due` alone decides when an entity is delivered; a member whose
        entity left `due` is dropped by the next claim, and a lost hint only costs priority.
        """
        return f"{self.prefix}:due:live"

    def lease(self, entity: str) -> str:
        """STRING token: one deliverer per entity; PX lease (VISIBILITY_TIMEOUT/2, at most 30 s)
        renewed by a heartbeat, so a killed worker's lease lapses well before the entity is due."""
        return f"{self.prefix}:lease:{entity}"

    def attr_clock(self, entity: str) -> str:
        """HASH attribute -> timestamp of the event that last set it (last-writer-wins).

        No TTL: dropping it would let a late old event overwrite a newer value.
        """
        return f"{self.prefix}:clock:{entity}"

    def retry_state(self, entity: str) -> str:
        """HASH attempts / first_failure / last_error / attempt:<n> (one JSON record per failed
        attempt, copied into the dead letter's history) for an entity that is backing off.

        No TTL: deleted by the next commit or dead-letter; RETRY_WINDOW is counted from it.
        """
        return f"{self.prefix}:retry:{entity}"

    def uuid_cache(self, kind: str) -> str:
        """HASH external id -> ChartMogul uuid (customer or contact); no TTL, uuids are stable."""
        return f"{self.prefix}:uuid:{kind}"

    def confirmed(self, customer_external_id: str) -> str:
        """STRING (JSON) what ChartMogul confirmed holding for a customer and its contacts;
        TTL CONFIRMED_STATE_TTL. Dropped on a 404, a merge, a replay and by `cmrelay resync`."""
        return f"{self.prefix}:held:{customer_external_id}"

    def trace(self, message_id: str) -> str:
        """HASH one event's trail (`cmrelay trace`): info, state, entity, accepted_at,
        outcome_at, duplicates; TTL TRACE_RETENTION from its last step."""
        return f"{self.prefix}:trace:{message_id}"

    def webhook_sent(self, entity: str) -> str:
        """SET of messageIds a webhook-mode attempt posted before it failed part-way, so the
        retry does not post them again; TTL DEDUPE_WINDOW."""
        return f"{self.prefix}:whsent:{entity}"

    @property
    def relay_leads(self) -> str:
        """HASH user id -> uuid of the lead customer the relay created for that user (merged
        into the company when a Group call adds the user to one)."""
        return f"{self.prefix}:leads"

    @property
    def create_mode(self) -> str:
        """STRING score: creates that met an existing customer lately (lookup-first above 3)."""
        return f"{self.prefix}:createmode"

    def unstored_logged(self, name: str) -> str:
        """STRING with a 1 h TTL: a field ChartMogul did not keep was logged within the hour."""
        return f"{self.prefix}:unstored:{name}"

    @property
    def custom_attr_types(self) -> str:
        """HASH custom attribute key -> ChartMogul type, learned from the account."""
        return f"{self.prefix}:attrtypes"

    @property
    def user_groups(self) -> str:
        """HASH userId -> groupId learned from Group calls (the `group` company policy)."""
        return f"{self.prefix}:usergroup"

    def waiting_for_group(self, user_id: str) -> str:
        """LIST of Identify envelopes held until a Group call links this user to a company.

        TTL DLQ_RETENTION, renewed on each push: kept as long as a dead letter would be, but a
        user who is never grouped does not hold memory forever.
        """
        return f"{self.prefix}:waitgroup:{user_id}"

    # --- limits and pause ---------------------------------------------------------------------
    @property
    def rate_bucket(self) -> str:
        """HASH GCRA state (tat, factor, changed) shared by every worker; no TTL, tiny."""
        return f"{self.prefix}:limit:rate"

    @property
    def in_flight(self) -> str:
        """ZSET request token -> lease deadline: the global concurrency semaphore.

        Members carry their own deadline (request timeout + margin) instead of a TTL, so a dead
        worker's slots are reclaimed one by one.
        """
        return f"{self.prefix}:limit:inflight"

    @property
    def blocked_until(self) -> str:
        """STRING epoch microseconds: nobody calls ChartMogul before this (429 / Retry-After).

        PX TTL = the block itself plus 1 s, so it cleans itself up.
        """
        return f"{self.prefix}:limit:blocked"

    @property
    def pause(self) -> str:
        """STRING reason: delivery is paused for everyone (401/403) until a probe succeeds.

        No TTL: only a successful probe may resume delivery.
        """
        return f"{self.prefix}:pause"

    @property
    def pause_probe(self) -> str:
        """STRING lock; PX PAUSE_PROBE_INTERVAL so one worker probes per interval, not all."""
        return f"{self.prefix}:pause:probe"

    # --- dead letters and counters -----------------------------------------------------------
    def dlq_entry(self, entry_id: str) -> str:
        """STRING JSON of one dead letter; TTL DLQ_RETENTION."""
        return f"{self.prefix}:dlq:entry:{entry_id}"

    @property
    def dlq_index(self) -> str:
        """ZSET entry id -> dead-lettered at (epoch seconds); trimmed past DLQ_RETENTION."""
        return f"{self.prefix}:dlq:index"

    @property
    def dlq_status(self) -> str:
        """HASH entry id -> "dead" | "replayed"; apart from the immutable entry so that a replay
        flips it atomically. Fields go with their entry (purge, retention trim)."""
        return f"{self.prefix}:dlq:status"

    @property
    def counters(self) -> str:
        """HASH outcome -> count (received, ignored, skipped:<reason>, filtered, ...)."""
        return f"{self.prefix}:counters"

    @property
    def metrics(self) -> str:
        """HASH "name|label|label" -> count: relay-wide Prometheus counters that are not engine
        outcomes (ingest requests, ChartMogul responses, rate-limit waits). No TTL: counters
        only grow, as Prometheus expects; every process on every host adds to the same hash."""
        return f"{self.prefix}:metrics"

    @property
    def latency(self) -> str:
        """HASH bucket upper bound -> deliveries in that bucket (not cumulative), plus "sum"
        and "count": the ingest -> ChartMogul latency histogram. No TTL, like `metrics`."""
        return f"{self.prefix}:metrics:latency"

    @property
    def dlq_reasons(self) -> str:
        """HASH dead letter id -> reason, for DLQ size by reason without reading every entry.

        Fields go with their entry (DeadLetterQueue.purge, and the retention trim it runs).
        """
        return f"{self.prefix}:dlq:reasons"

    @property
    def heartbeats(self) -> str:
        """ZSET "host|pid" -> wall-clock time of that worker's last scheduler tick.

        A ZSET, not one key per worker with a TTL, so that health checks and scrapes read every
        worker in one call instead of SCANning a keyspace of millions of dedupe marks. The TTL
        is in the score: readers count only ticks newer than WORKER_HEARTBEAT_TTL, and every
        beat drops members ten TTLs old (workers that died without cleaning up).
        """
        return f"{self.prefix}:heartbeats"

    @property
    def write_probe(self) -> str:
        """STRING written by readiness checks to learn whether Redis accepts writes (a full
        Redis under noeviction answers reads but refuses writes); PX a few seconds."""
        return f"{self.prefix}:probe:write"

    # --- admin ---------------------------------------------------------------------------
    def admin_failures(self, address: str) -> str:
        """STRING count of wrong admin tokens from one client address; EX ADMIN_FAILURE_WINDOW
        from the first, so the count (and the wait) ends with its window."""
        return f"{self.prefix}:admin:failures:{address}"

    def admin_session(self, digest: str) -> str:
        """STRING fingerprint of the ADMIN_TOKEN a page session was started under, keyed by the
        sha256 of its cookie; EX the session's length, deleted at logout."""
        return f"{self.prefix}:admin:session:{digest}"

    # --- backfill -------------------------------------------------------------------------------
    @property
    def backfill_checkpoints(self) -> str:
        """HASH file identity ("path|size|mtime_ns") -> JSON checkpoint (offset of the next
        record to read, items of it already handled, counts, done). No TTL: a resumed backfill
        must find it however late; `cmrelay backfill status` reads it from any host."""
        return f"{self.prefix}:backfill:files"

    @property
    def backfill_counters(self) -> str:
        """HASH read / queued / rejected / ignored -> count over every backfill run; no TTL."""
        return f"{self.prefix}:backfill:counters"

    @property
    def backfill_rate_bucket(self) -> str:
        """HASH GCRA state (tat) of the backfill lane: BACKFILL_RATE_SHARE of the rate, applied
        only while `live_waiting` exists; no TTL, tiny."""
        return f"{self.prefix}:limit:backfill"

    @property
    def live_waiting(self) -> str:
        """STRING: live (not backfilled) events are waiting for delivery. Set at accept and by
        each live request with a PX TTL of a few seconds, so it clears itself once live traffic
        stops and the backfill gets the whole rate again."""
        return f"{self.prefix}:limit:live"


ENTITY_PREFIX = "customer:"


def entity_key(customer_external_id: str) -> str:
    """The unit of ordering, coalescing and locking: one ChartMogul customer (and its contacts)."""
    return f"{ENTITY_PREFIX}{customer_external_id}"


def entity_external_id(entity: str) -> str:
    """The customer external id of an entity key ("customer:<id>")."""
    return entity.removeprefix(ENTITY_PREFIX)
