"""Progress of `cmrelay backfill`: events read, queued, rejected, delivered, rate and ETA, as a
bar on a terminal and plain periodic lines otherwise; the same line for `backfill status`.

Snapshots are pure values; `eta` and `describe` compare two of them. The running command takes
its snapshots from its own counts, `status` from the checkpoints and counters in Redis, so any
host shows what the running one shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from cmrelay_cli.progress import StatusLine, bar, duration
from ingest.backfill import Tally
from worker.pipeline.finish import BACKFILL_DELIVERED

# keys.counters field the workers bump for each backfilled event that reached an outcome.
DELIVERED_FIELD = BACKFILL_DELIVERED


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Counts at one moment; bytes are of the files on disk (compressed for gzip)."""

    at: float
    read: int = 0
    queued: int = 0
    rejected: int = 0
    ignored: int = 0
    delivered: int = 0
    bytes_done: int = 0
    bytes_total: int = 0

    @property
    def fraction(self) -> float:
        """Share of the bytes read (1.0 when there was nothing to read)."""
        return min(1.0, self.bytes_done / self.bytes_total) if self.bytes_total else 1.0


def eta(first: Snapshot, now: Snapshot) -> float | None:
    """Seconds until every event is read and delivered, at the rates between the two
    snapshots; None while a rate is still unknown. The events still to queue are projected
    from the events queued per byte so far."""
    seconds = now.at - first.at
    if seconds <= 0:
        return None
    left = max(0, now.bytes_total - now.bytes_done)
    byte_rate = (now.bytes_done - first.bytes_done) / seconds
    if left and byte_rate <= 0:
        return None
    reading = left / byte_rate if left else 0.0
    projected = now.queued * now.bytes_total / now.bytes_done if now.bytes_done else now.queued
    undelivered = max(0.0, projected - now.delivered)
    if undelivered < 1:
        return reading
    delivery_rate = (now.delivered - first.delivered) / seconds
    if delivery_rate <= 0:
        return None
    return max(reading, undelivered / delivery_rate)


def describe(first: Snapshot, now: Snapshot) -> str:
    """read, queued, rejected, ignored, delivered, events read per second, ETA."""
    seconds = max(now.at - first.at, 1e-6)
    rate = (now.read - first.read) / seconds
    return (f"read {now.read}  queued {now.queued}  rejected {now.rejected}  "
            f"ignored {now.ignored}  delivered {now.delivered}  {rate:,.0f} events/s  "
            f"ETA {duration(eta(first, now))}")  # fmt: skip


class ProgressLine:
    """A redrawn bar on a terminal, a plain line every `every` seconds otherwise.

    `delivered` reads the relay-wide count of backfilled events that reached an outcome; the
    line shows how many did since this run started (earlier runs' backlog included).
    """

    def __init__(
        self, out: TextIO, every: float, delivered: Callable[[], int] | None = None
    ) -> None:
        self.out = out
        self.line = StatusLine(out, "backfill progress", every, quiet_at_start=True)
        self.read_delivered = delivered or (lambda: 0)
        self.base = self.read_delivered()
        self.first = Snapshot(time.monotonic())

    def snapshot(self, tally: Tally) -> Snapshot:
        """This run's counts now."""
        return Snapshot(time.monotonic(), tally.read, tally.queued, tally.rejected,
                        tally.ignored, self.read_delivered() - self.base, tally.bytes_read,
                        tally.to_read)  # fmt: skip

    def message(self, text: str) -> None:
        """A line of its own (a rejected item): on a terminal it replaces the bar, which the
        next redraw puts back below it."""
        self.out.write(("\r\x1b[K" if self.line.tty else "") + text + "\n")

    def __call__(self, tally: Tally, *, final: bool = False) -> None:
        """Show the counts if it is time (always when final; off a terminal the final counts
        are left to the summary the command prints)."""
        if final and not self.line.tty:
            return
        snap = self.snapshot(tally)
        text = describe(self.first, snap)
        if self.line.tty:
            text = f"{bar(snap.bytes_done, snap.bytes_total)} {snap.fraction:4.0%}  {text}"
        self.line.show(text, final=final)
        if final:
            self.line.close()


def delivered_reader(client: Any, keys: Any) -> Callable[[], int]:
    """Reads the workers' count of backfilled events that reached an outcome at delivery."""

    def read() -> int:
        return int(client.hget(keys.counters, DELIVERED_FIELD) or 0)

    return read


def stored_snapshot(
    checkpoints: Sequence[Mapping[str, Any]], counters: Mapping[str, int], delivered: int, at: float
) -> Snapshot:
    """What Redis says about every backfill run: the counters over all runs, bytes from the
    checkpoints (files a run has planned but not reached count as unread)."""
    return Snapshot(
        at, counters.get("read", 0), counters.get("queued", 0), counters.get("rejected", 0),
        counters.get("ignored", 0), delivered,
        sum(int(c.get("bytes", 0)) for c in checkpoints),
        sum(int(c.get("size", 0)) for c in checkpoints),
    )  # fmt: skip
