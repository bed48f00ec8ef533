"""The deliver step for one entity: lease, read the mailbox, call the deliverer, commit once.

The errors a deliverer raises are handled here and only here, by type: a configuration error
pauses everyone, a permanent one dead-letters, anything else is retried until RETRY_WINDOW ends.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from cmrelay.dlq.entry import REASON_EXPIRED, REASON_PERMANENT
from cmrelay.envelope import ORIGIN_BACKFILL, Envelope, EnvelopeError
from cmrelay.errors import DeliveryConfigurationError, DeliveryError, PermanentDeliveryError
from worker.delivery.limiter import LaneYieldError, delivery_lane
from worker.pipeline.engine import Engine
from worker.pipeline.finish import (
    YIELDED,
    Finish,
    Read,
    dead_lettered,
    delivered,
    paused,
    retrying,
)
from worker.pipeline.outcomes import report_outcomes

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_EVENTS = 500  # per delivery: a long backlog is delivered in slices, oldest first


def deliver_entity(engine: Engine, entity: str) -> str:
    """Deliver what is pending for one entity; returns what happened (for logs and tests)."""
    token = secrets.token_hex(8)
    keeper = LeaseKeeper(engine, entity, token)
    if not keeper.acquire():
        return "busy"  # another worker has it; it re-schedules when done
    keeper.start()
    try:
        finish = _attempt(engine, entity)
    finally:
        keeper.stop()
    if not _commit(engine, entity, token, finish):
        log.warning("lost the lease on %s before committing; another worker redoes it", entity)
        return "lease lost"
    report_outcomes(engine, entity, finish.outcomes)
    return finish.label


class LeaseKeeper(threading.Thread):
    """Takes the lease, then renews it (pushing the entity's due time on) while work goes on."""

    def __init__(self, engine: Engine, entity: str, token: str) -> None:
        super().__init__(daemon=True, name="cmrelay-lease")
        self._engine, self._entity, self._token = engine, entity, token
        self._stop_event = threading.Event()

    def _lease(self, mode: Literal["acquire", "renew"]) -> bool:
        engine = self._engine
        return engine.scripts.lease(
            mode,
            self._entity,
            token=self._token,
            ttl_ms=int(engine.lease_ttl * 1000),
            claim_seconds=engine.claim_timeout,
        )

    def acquire(self) -> bool:
        """Take the lease; False when another worker holds it."""
        return self._lease("acquire")

    def run(self) -> None:
        while not self._stop_event.wait(self._engine.lease_ttl / 3):
            try:
                if not self._lease("renew"):
                    return
            except Exception:  # Redis hiccup: try again next beat; the lease has slack
                log.warning("lease renewal failed", exc_info=True)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _attempt(engine: Engine, entity: str) -> Finish:
    keys, client = engine.keys, engine.redis
    # Outside the try below: a deliverer that cannot even be built is a ConfigurationError for
    # the operator, not a delivery failure that would run out the retry window into the DLQ.
    engine.deliverer  # noqa: B018 - build it here, before anything counts as an attempt
    if client.exists(keys.pause):
        return Finish("paused", delay=engine.settings.pause_probe_interval)
    raws: list[Any] = client.lrange(keys.mailbox(entity), 0, MAX_EVENTS - 1)
    if not raws:
        return Finish("empty")
    # Webhook mode posts in arrival order, as Segment does; API mode orders by timestamp.
    by_time = engine.settings.delivery_mode != "webhook"
    read = Read(
        entity, raws, _decode(raws, by_time=by_time),
        _text_hash(client.hgetall(keys.attr_clock(entity))),
        _text_hash(client.hgetall(keys.retry_state(entity))),
    )  # fmt: skip
    return _deliver_read(engine, read)


def _deliver_read(engine: Engine, read: Read) -> Finish:
    """Call the deliverer on what was read; every way it can end, as a Finish."""
    entity, deliverer = read.entity, engine.deliverer
    backfill = bool(read.envelopes) and all(e.origin == ORIGIN_BACKFILL for _, e in read.envelopes)
    try:
        with delivery_lane("backfill" if backfill else "live", give_back=True):
            outcome = deliverer.deliver(entity, read.events, read.clock)
    except LaneYieldError as exc:  # before any call: not a failure, so no attempt and no backoff
        return Finish(YIELDED, delay=exc.retry_after or 0.0, counters={YIELDED: 1})
    except DeliveryConfigurationError as exc:
        return paused(exc, engine.settings.pause_probe_interval, engine.masker)
    except PermanentDeliveryError as exc:
        return dead_lettered(read, REASON_PERMANENT, exc, engine.masker, _planned(engine, read))
    except Exception as exc:  # retryable, or a bug: both retried until RETRY_WINDOW runs out
        return _retry_or_expire(engine, read, exc)
    return delivered(read, outcome, engine.masker)


def _retry_or_expire(engine: Engine, read: Read, exc: Exception) -> Finish:
    if not isinstance(exc, DeliveryError):
        log.exception("unexpected error delivering %s; retrying", read.entity, exc_info=exc)
    again = retrying(read, exc, engine.retry, engine.masker)
    if again is not None:
        return again
    return dead_lettered(read, REASON_EXPIRED, exc, engine.masker, _planned(engine, read))


def _planned(engine: Engine, read: Read) -> Sequence[Mapping[str, Any]]:
    """The calls a delivery would make, for the dead letter (never fatal)."""
    try:
        return engine.deliverer.planned_operations(read.entity, read.events, read.clock)
    except Exception:  # the plan is a courtesy to the operator; never lose the entry over it
        log.warning("could not plan operations for the DLQ entry of %s", read.entity, exc_info=True)
        return ()


def _commit(engine: Engine, entity: str, token: str, finish: Finish) -> bool:
    entry = finish.dead_letter
    return engine.scripts.deliver_finish(
        entity,
        token=token,
        drain=finish.drain,
        delay=finish.delay,
        coalesce=engine.settings.coalesce_window,
        retry_mode=finish.retry_mode,
        now=time.time(),
        last_error=finish.last_error,
        pause_reason=finish.pause_reason,
        clock_json=orjson.dumps(dict(finish.clock)),
        counters_json=orjson.dumps(finish.counters),
        attempt_json=finish.attempt,
        dlq_id=entry.id if entry else "",
        dlq_json=entry.to_json() if entry else b"",
        dlq_reason=entry.reason if entry else "",
        dlq_ttl=int(engine.settings.dlq_retention),
    )


def _decode(raws: list[bytes], *, by_time: bool = True) -> list[tuple[bytes, Envelope]]:
    """Readable envelopes, sorted by Segment timestamp (stable: ties keep arrival order)
    unless `by_time` is False (then in arrival order)."""
    out = []
    for raw in raws:
        try:
            out.append((raw, Envelope.from_bytes(raw)))
        except EnvelopeError:
            log.error("dropping an unreadable mailbox item")
    if by_time:
        out.sort(key=lambda pair: _event_time(pair[1].event))
    return out


def _text_hash(raw: Any) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def _event_time(event: Mapping[str, Any]) -> datetime:
    value = event.get("timestamp")
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return _EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
