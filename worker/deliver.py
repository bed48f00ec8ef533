"""The deliver step for one entity: lease, drain the mailbox, call the deliverer, commit once."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from cmrelay.envelope import Envelope, EnvelopeError
from cmrelay.errors import (
    DeliveryConfigurationError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from worker import dlq
from worker.backoff import retry_delay
from worker.delivery import DeliveryOutcome
from worker.engine import Engine
from worker.outcomes import report_outcomes

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_EVENTS = 500  # per delivery: a long backlog is delivered in slices, oldest first


@dataclass
class Finish:
    """Everything one attempt changes, applied by deliver_finish.lua in one step."""

    label: str
    drain: int = 0
    delay: float | None = None  # None: due again after COALESCE_WINDOW if events remain
    retry_mode: str = "keep"  # clear | record | keep
    last_error: str = ""
    attempt: bytes = b""  # JSON of dlq.attempt_record, kept in the retry state for the DLQ
    dead_letter: dlq.DlqEntry | None = None
    pause_reason: str = ""
    clock: Mapping[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    # (envelope, outcome) per event read: logged and timed once the commit has landed.
    outcomes: list[tuple[Envelope, str]] = field(default_factory=list)


def deliver_entity(engine: Engine, entity: str) -> str:
    """Deliver what is pending for one entity; returns what happened (for logs and tests)."""
    keys = engine.keys
    token = secrets.token_hex(8)
    ttl_ms = int(engine.lease_ttl * 1000)
    lease_args = [token, ttl_ms, entity, engine.claim_timeout]
    lease_keys = [keys.lease(entity), keys.due]
    if not engine.scripts.run("lease", lease_keys, ["acquire", *lease_args]):
        return "busy"  # another worker has it; it re-schedules when done
    heartbeat = _Heartbeat(engine, lease_keys, lease_args)
    heartbeat.start()
    try:
        finish = _attempt(engine, entity)
    finally:
        heartbeat.stop()
    if not _commit(engine, entity, token, finish):
        log.warning("lost the lease on %s before committing; another worker redoes it", entity)
        return "lease lost"
    report_outcomes(engine, entity, finish.outcomes)
    return finish.label


class _Heartbeat(threading.Thread):
    """Renews the lease (and pushes the entity's due time on) while the deliverer works."""

    def __init__(self, engine: Engine, lease_keys: list[str], lease_args: list[Any]) -> None:
        super().__init__(daemon=True, name="cmrelay-lease")
        self._engine, self._keys, self._args = engine, lease_keys, lease_args
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self._engine.lease_ttl / 3):
            try:
                if not self._engine.scripts.run("lease", self._keys, ["renew", *self._args]):
                    return
            except Exception:  # Redis hiccup: try again next beat; the lease has slack
                log.warning("lease renewal failed", exc_info=True)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass(frozen=True)
class _Read:
    """What one attempt read under the lease."""

    entity: str
    raws: list[bytes]
    envelopes: list[tuple[bytes, Envelope]]  # readable ones, sorted by Segment timestamp
    clock: Mapping[str, str]
    retry: Mapping[str, str]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [env.event for _, env in self.envelopes]


def _attempt(engine: Engine, entity: str) -> Finish:
    keys, client = engine.keys, engine.redis
    # Outside the try below: a deliverer that cannot even be built is a ConfigurationError for
    # the operator, not a delivery failure that would run out the retry window into the DLQ.
    deliverer = engine.deliverer
    if client.exists(keys.pause):
        return Finish("paused", delay=engine.settings.pause_probe_interval)
    raws: list[Any] = client.lrange(keys.mailbox(entity), 0, MAX_EVENTS - 1)
    if not raws:
        return Finish("empty")
    read = _Read(
        entity, raws, _decode(raws),
        _text_hash(client.hgetall(keys.attr_clock(entity))),
        _text_hash(client.hgetall(keys.retry_state(entity))),
    )  # fmt: skip
    try:
        outcome = deliverer.deliver(entity, read.events, read.clock)
    except DeliveryConfigurationError as exc:
        reason = dlq.mask_secrets(f"{exc.error_class}: {exc.message}", engine.settings)
        log.error("pausing all delivery: %s", reason)
        return Finish("paused", delay=engine.settings.pause_probe_interval, pause_reason=reason)
    except PermanentDeliveryError as exc:
        return _dead(engine, read, dlq.REASON_PERMANENT, exc)
    except Exception as exc:  # retryable, or a bug: both retried until RETRY_WINDOW runs out
        return _retry_or_expire(engine, read, exc)
    return _success(engine, read, outcome)


def _success(engine: Engine, read: _Read, outcome: DeliveryOutcome) -> Finish:
    failed = [r for r in outcome.results if r.status == "failed"]
    skipped = sum(1 for r in outcome.results if r.status == "skipped")
    per_event = {r.message_id: r.status for r in outcome.results}
    names = {"failed": "dead_lettered", "skipped": "skipped"}
    outcomes = [(env, names.get(per_event.get(env.message_id, ""), "delivered"))
                for _, env in read.envelopes]  # fmt: skip
    counters = {"delivered": len(read.envelopes) - len(failed) - skipped, "calls": outcome.calls}
    if skipped:
        counters["skipped_at_delivery"] = skipped
    if len(read.raws) > len(read.envelopes):
        counters["invalid"] = len(read.raws) - len(read.envelopes)
    entry = None
    if failed:
        ids = {r.message_id for r in failed}
        first = next((r.error for r in failed if r.error is not None), None)
        error_text = first.message if first else failed[0].reason
        error_class = first.error_class if first else "PartialDelivery"
        status = first.status if first else None
        masked = dlq.mask_secrets(error_text, engine.settings)
        entry = dlq.new_entry(
            entity=read.entity, reason=dlq.REASON_PARTIAL, error_class=error_class,
            last_error=masked, attempts=1, first_attempt_at=time.time(),
            envelopes=[raw for raw, env in read.envelopes if env.message_id in ids],
            planned_operations=outcome.planned_operations, status_code=status,
            last_response=dlq.mask_secrets(first.body, engine.settings) if first else "",
            history=[dlq.attempt_record(time.time(), error_class, status, masked)],
        )  # fmt: skip
        counters["dead_lettered"] = len(failed)
    return Finish("delivered", len(read.raws), retry_mode="clear", dead_letter=entry,
                  clock=outcome.clock_updates, counters=counters, outcomes=outcomes)  # fmt: skip


def _retry_or_expire(engine: Engine, read: _Read, exc: Exception) -> Finish:
    now = time.time()
    first = float(read.retry.get("first_failure", now))
    attempts = int(read.retry.get("attempts", "0")) + 1
    if not isinstance(exc, DeliveryError):
        log.exception("unexpected error delivering %s; retrying", read.entity, exc_info=exc)
    if now - first >= engine.settings.retry_window:
        return _dead(engine, read, dlq.REASON_EXPIRED, exc)
    retry_after = exc.retry_after if isinstance(exc, RetryableDeliveryError) else None
    settings = engine.settings
    delay = retry_delay(attempts, base=settings.retry_backoff_base,
                        cap=settings.retry_backoff_max, retry_after=retry_after)  # fmt: skip
    text = _error_text(engine, exc)
    return Finish("retrying", delay=delay, retry_mode="record", last_error=text,
                  attempt=orjson.dumps(_attempt_record(now, exc, text)),
                  counters={"retries": 1},
                  outcomes=[(env, "retrying") for _, env in read.envelopes])  # fmt: skip


def _dead(engine: Engine, read: _Read, reason: str, exc: Exception) -> Finish:
    """Dead-letter everything read, atomically with draining it from the mailbox."""
    try:
        planned: Sequence[Mapping[str, Any]] = engine.deliverer.planned_operations(
            read.entity, read.events, read.clock
        )
    except Exception:  # the plan is a courtesy to the operator; never lose the entry over it
        log.warning("could not plan operations for the DLQ entry of %s", read.entity, exc_info=True)
        planned = ()
    text = _error_text(engine, exc)
    last = _attempt_record(time.time(), exc, text)
    entry = dlq.new_entry(
        entity=read.entity,
        reason=reason,
        error_class=last["error_class"],
        last_error=text,
        attempts=int(read.retry.get("attempts", "0")) + 1,
        first_attempt_at=float(read.retry.get("first_failure", time.time())),
        envelopes=[raw for raw, _ in read.envelopes],
        planned_operations=planned,
        status_code=last["status_code"],
        last_response=dlq.mask_secrets(exc.body, engine.settings)
        if isinstance(exc, DeliveryError)
        else "",
        history=[*dlq.history_from_retry(read.retry), last],
    )
    log.warning("dead-lettered %d events of %s: %s", len(read.raws), read.entity, reason)
    return Finish("dead-lettered", len(read.raws), retry_mode="clear", dead_letter=entry,
                  counters={"dead_lettered": len(read.raws)},
                  outcomes=[(env, "dead_lettered") for _, env in read.envelopes])  # fmt: skip


def _attempt_record(at: float, exc: Exception, text: str) -> dict[str, Any]:
    if isinstance(exc, DeliveryError):
        return dlq.attempt_record(at, exc.error_class, exc.status, text)
    return dlq.attempt_record(at, type(exc).__name__, None, text)


def _error_text(engine: Engine, exc: Exception) -> str:
    if isinstance(exc, DeliveryError):
        status = f" (HTTP {exc.status})" if exc.status is not None else ""
        text = f"{exc.message}{status}" + (f": {exc.body}" if exc.body else "")
    else:
        text = f"{type(exc).__name__}: {exc}"
    return dlq.mask_secrets(text, engine.settings)


def _commit(engine: Engine, entity: str, token: str, finish: Finish) -> bool:
    keys = engine.keys
    entry = finish.dead_letter
    result = engine.scripts.run(
        "deliver_finish",
        [
            keys.lease(entity), keys.mailbox(entity), keys.due, keys.attr_clock(entity),
            keys.retry_state(entity), keys.counters, keys.dlq_index,
            keys.dlq_entry(entry.id if entry else "-"), keys.dlq_status, keys.pause,
            keys.dlq_reasons,
        ],
        [
            token, entity, finish.drain, "" if finish.delay is None else f"{finish.delay:.6f}",
            engine.settings.coalesce_window, finish.retry_mode, f"{time.time():.6f}",
            finish.last_error, entry.id if entry else "", entry.to_json() if entry else b"",
            int(engine.settings.dlq_retention), finish.pause_reason,
            orjson.dumps(dict(finish.clock)), orjson.dumps(finish.counters), finish.attempt,
            entry.reason if entry else "",
        ],
    )  # fmt: skip
    return bool(result)


def _decode(raws: list[bytes]) -> list[tuple[bytes, Envelope]]:
    """Readable envelopes sorted by Segment timestamp (stable: ties keep arrival order)."""
    out = []
    for raw in raws:
        try:
            out.append((raw, Envelope.from_bytes(raw)))
        except EnvelopeError:
            log.error("dropping an unreadable mailbox item")
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
