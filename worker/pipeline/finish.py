"""How one delivery attempt ends: delivered, retrying, dead-lettered or paused (pure).

Each function turns what an attempt read and what happened into a `Finish`: every change the
attempt makes, applied by `deliver_finish.lua` in one atomic step under the entity's lease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from cmrelay.dlq.entry import (
    REASON_PARTIAL,
    DlqEntry,
    attempt_record,
    history_from_retry,
    new_entry,
)
from cmrelay.envelope import ORIGIN_BACKFILL, Envelope
from cmrelay.errors import DeliveryError, RetryableDeliveryError
from cmrelay.lua import RetryMode
from cmrelay.masking import Masker
from worker.delivery.contract import DeliveryOutcome
from worker.pipeline.retry import RetryPolicy

log = logging.getLogger(__name__)

# Per-event outcomes, as logged and counted (one spelling everywhere).
DELIVERED, SKIPPED, RETRYING, DEAD_LETTERED = "delivered", "skipped", "retrying", "dead_lettered"
UNCHANGED = "unchanged"  # delivered with no call: ChartMogul already held all of it
# A backfill-only delivery that gave its entity back before any call because its lane was
# throttled for live traffic (LaneYield): the label, and its keys.counters field.
YIELDED = "backfill_yields"
# Backfilled events that reached an outcome at delivery (any but retrying): the progress of
# `cmrelay backfill` and its `delivered` metric stage, one relay-wide counter.
BACKFILL_DELIVERED = "backfill_delivered"


@dataclass
class Finish:
    """Everything one attempt changes, applied by deliver_finish.lua in one step."""

    label: str
    drain: int = 0
    delay: float | None = None  # None: due again after COALESCE_WINDOW if events remain
    retry_mode: RetryMode = "keep"
    last_error: str = ""
    attempt: bytes = b""  # JSON of attempt_record, kept in the retry state for the DLQ
    dead_letter: DlqEntry | None = None
    pause_reason: str = ""
    clock: Mapping[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    # (envelope, outcome) per event read: logged and timed once the commit has landed.
    outcomes: list[tuple[Envelope, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Read:
    """What one attempt read under the lease."""

    entity: str
    raws: list[bytes]
    envelopes: list[tuple[bytes, Envelope]]  # readable ones, sorted by Segment timestamp
    clock: Mapping[str, str]
    retry: Mapping[str, str]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The Segment events, oldest first."""
        return [env.event for _, env in self.envelopes]

    @property
    def attempts(self) -> int:
        """Failed attempts so far, this one included."""
        return int(self.retry.get("attempts", "0")) + 1


def delivered(read: Read, outcome: DeliveryOutcome, masker: Masker) -> Finish:
    """The deliverer went through; events it refused alone go to the DLQ as `partial`."""
    failed = [r for r in outcome.results if r.status == "failed"]
    skipped = sum(1 for r in outcome.results if r.status == "skipped")
    per_event = {r.message_id: r.status for r in outcome.results}
    names = {"failed": DEAD_LETTERED, "skipped": SKIPPED, "unchanged": UNCHANGED}
    outcomes = [(env, names.get(per_event.get(env.message_id, ""), DELIVERED))
                for _, env in read.envelopes]  # fmt: skip
    unchanged = sum(1 for _, name in outcomes if name == UNCHANGED)
    counters = {
        "delivered": len(read.envelopes) - len(failed) - skipped - unchanged,
        "calls": outcome.calls,
    }
    if skipped:
        counters["skipped_at_delivery"] = skipped
    if unchanged:
        counters["unchanged"] = unchanged
    if len(read.raws) > len(read.envelopes):
        counters["invalid"] = len(read.raws) - len(read.envelopes)
    counters.update(_backfill_done(read))
    entry = None
    if failed:
        ids = {r.message_id for r in failed}
        first = next((r.error for r in failed if r.error is not None), None)
        error_class = first.error_class if first else "PartialDelivery"
        status = first.status if first else None
        masked = masker.excerpt(first.message if first else failed[0].reason)
        now = time.time()
        entry = new_entry(
            entity=read.entity, reason=REASON_PARTIAL, error_class=error_class,
            last_error=masked, attempts=1, first_attempt_at=now,
            envelopes=[raw for raw, env in read.envelopes if env.message_id in ids],
            planned_operations=outcome.planned_operations, status_code=status,
            last_response=masker.excerpt(first.body) if first else "",
            history=[attempt_record(now, error_class, status, masked)],
        )  # fmt: skip
        counters["dead_lettered"] = len(failed)
    return Finish(DELIVERED, len(read.raws), retry_mode="clear", dead_letter=entry,
                  clock=outcome.clock_updates, counters=counters, outcomes=outcomes)  # fmt: skip


def retrying(read: Read, exc: Exception, policy: RetryPolicy, masker: Masker) -> Finish | None:
    """Back off and try again; None when RETRY_WINDOW is used up (dead-letter instead)."""
    now = time.time()
    if policy.expired(float(read.retry.get("first_failure", now)), now):
        return None
    retry_after = exc.retry_after if isinstance(exc, RetryableDeliveryError) else None
    text = error_text(exc, masker)
    return Finish(RETRYING, delay=policy.delay(read.attempts, retry_after), retry_mode="record",
                  last_error=text, attempt=orjson.dumps(_attempt_record(now, exc, text)),
                  counters={"retries": 1},
                  outcomes=[(env, RETRYING) for _, env in read.envelopes])  # fmt: skip


def dead_lettered(
    read: Read,
    reason: str,
    exc: Exception,
    masker: Masker,
    planned: Sequence[Mapping[str, Any]],
) -> Finish:
    """Dead-letter everything read, atomically with draining it from the mailbox."""
    text = error_text(exc, masker)
    last = _attempt_record(time.time(), exc, text)
    entry = new_entry(
        entity=read.entity,
        reason=reason,
        error_class=last["error_class"],
        last_error=text,
        attempts=read.attempts,
        first_attempt_at=float(read.retry.get("first_failure", time.time())),
        envelopes=[raw for raw, _ in read.envelopes],
        planned_operations=planned,
        status_code=last["status_code"],
        last_response=masker.excerpt(exc.body) if isinstance(exc, DeliveryError) else "",
        history=[*history_from_retry(read.retry), last],
    )
    log.warning("dead-lettered %d events of %s: %s", len(read.raws), read.entity, reason,
                extra={"entity": read.entity, "dlq_id": entry.id})  # fmt: skip
    return Finish(DEAD_LETTERED, len(read.raws), retry_mode="clear", dead_letter=entry,
                  counters={"dead_lettered": len(read.raws), **_backfill_done(read)},
                  outcomes=[(env, DEAD_LETTERED) for _, env in read.envelopes])  # fmt: skip


def _backfill_done(read: Read) -> dict[str, int]:
    done = sum(1 for _, env in read.envelopes if env.origin == ORIGIN_BACKFILL)
    return {BACKFILL_DELIVERED: done} if done else {}


def paused(exc: DeliveryError, probe_interval: float, masker: Masker) -> Finish:
    """Credentials or data source refused: pause every worker, keep the events."""
    reason = masker.excerpt(f"{exc.error_class}: {exc.message}")
    log.error("pausing all delivery: %s", reason)
    return Finish("paused", delay=probe_interval, pause_reason=reason)


def _attempt_record(at: float, exc: Exception, text: str) -> dict[str, Any]:
    if isinstance(exc, DeliveryError):
        return attempt_record(at, exc.error_class, exc.status, text)
    return attempt_record(at, type(exc).__name__, None, text)


def error_text(exc: Exception, masker: Masker) -> str:
    """What went wrong, for the retry state and the DLQ: message, status, body excerpt."""
    if isinstance(exc, DeliveryError):
        status = f"HTTP {exc.status}" if exc.status is not None else ""
        # Messages from worker.delivery.http already name the status; say it once.
        suffix = f" ({status})" if status and status not in exc.message else ""
        text = f"{exc.message}{suffix}" + (f": {exc.body}" if exc.body else "")
    else:
        text = f"{type(exc).__name__}: {exc}"
    return masker.excerpt(text)
