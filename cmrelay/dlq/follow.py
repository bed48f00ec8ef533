"""What became of a replayed dead letter, read from each event's trail (`cmrelay trace`).

A replay re-queues the entry's events; the worker's accept step rewrites each event's trail
(`accepted_at`, `state`) and the delivery writes its outcome. A trail accepted after the entry
was dead-lettered is therefore the replay's; an older one means the replay is still on the
ingest queue. (The accept step stamps Redis' clock and the dead letter the worker's: they must
agree to within the time between an event's acceptance and its dead-lettering, at least
COALESCE_WINDOW plus one delivery attempt, which NTP-synced hosts do by far.)

Per event, an outcome from the trail falls in one of four kinds:

- done: `delivered`, `unchanged` (ChartMogul already held it), `skipped` (at delivery, e.g.
  refused by Segment's webhook validation) and the accept step's `ignored:*`, `skipped:*`,
  `filtered:*` (the router dropped it, with its reason): nothing more will happen to it;
- dead: `dead_lettered` again (a new entry holds it; `dead_letter_ids` names it);
- waiting: `queued` (not yet taken off the ingest queue), `accepted`, `retrying`,
  `waiting_for_group`;
- unknown: `no_trail` (expired after TRACE_RETENTION, TRACE_RETENTION 0, or not yet taken off
  the queue when the old trail had already expired).

An entry is `waiting` if any event is, else `unknown` if any is, else `dead` (all dead),
`mixed` (some dead, some done) or `delivered` (all done).
"""

from __future__ import annotations

import builtins
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import redis

from cmrelay.dlq.entry import STATUS_REPLAYED, DlqEntry
from cmrelay.keys import Keys

State = Literal["waiting", "delivered", "dead", "mixed", "unknown"]
Kind = Literal["done", "dead", "waiting", "unknown"]

QUEUED = "queued"  # the trail predates the dead letter: the replay is not accepted yet
NO_TRAIL = "no_trail"
DEAD_LETTERED = "dead_lettered"
_DONE = frozenset({"delivered", "unchanged", "skipped"})
_DONE_PREFIXES = ("ignored", "skipped", "filtered")  # accept-step counters "outcome:reason"
_WAITING = frozenset({QUEUED, "accepted", "retrying", "waiting_for_group"})
FINAL_STATES: frozenset[str] = frozenset({"delivered", "dead", "mixed"})
BATCH = 500  # entries per pipelined read: bounds one round trip's size
# A new dead letter is stamped (dead_lettered_at) just before the worker writes the event's
# outcome_at; it is looked for in the DLQ index within this many seconds before that.
NEW_ENTRY_WINDOW = 60.0


@dataclass(frozen=True)
class Trail:
    """The fields of one event's trail that tell what became of it."""

    state: str
    accepted_at: float | None
    outcome_at: float | None


def event_outcome(trail: Trail | None, dead_lettered_at: float) -> str:
    """The event's outcome since its entry was dead-lettered (`queued` if not yet accepted)."""
    if trail is None:
        return NO_TRAIL
    if trail.accepted_at is None or trail.accepted_at <= dead_lettered_at:
        return QUEUED
    return trail.state


def kind_of(outcome: str) -> Kind:
    """done, dead, waiting or unknown (see the module docstring)."""
    if outcome in _DONE or outcome.partition(":")[0] in _DONE_PREFIXES:
        return "done"
    if outcome == DEAD_LETTERED:
        return "dead"
    if outcome in _WAITING:
        return "waiting"
    return "unknown"


def entry_state(outcomes: Iterable[str]) -> State:
    """One entry's state from its events' outcomes."""
    kinds = {kind_of(o) for o in outcomes}
    if "waiting" in kinds:
        return "waiting"
    if "unknown" in kinds or not kinds:
        return "unknown"
    if kinds == {"dead"}:
        return "dead"
    return "mixed" if "dead" in kinds else "delivered"


def replay_state(
    entry: DlqEntry, trails: Mapping[str, Trail | None], dead_letter_ids: Sequence[str] = ()
) -> dict[str, Any]:
    """What became of one replayed entry: state, outcome counts, the new dead letters (pure)."""
    outcomes = [event_outcome(trails.get(m), entry.dead_lettered_at) for m in entry.message_ids]
    return {
        "state": entry_state(outcomes),
        "counts": dict(Counter(outcomes)),
        "dead_letter_ids": list(dead_letter_ids),
    }


def read_replay_states(
    client: redis.Redis, keys: Keys, entries: Sequence[DlqEntry]
) -> dict[str, dict[str, Any]]:
    """`replay_state` of each entry by id (replayed ones: their entry may still say dead): per
    batch one pipelined read of the trails, and two more only when some went dead again."""
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(entries), BATCH):
        batch = entries[start : start + BATCH]
        trails = _read_trails(client, keys, {m for e in batch for m in e.message_ids})
        dead = {
            m: (trail, e.dead_lettered_at)
            for e in batch
            for m in e.message_ids
            if (trail := trails.get(m)) is not None
            and event_outcome(trail, e.dead_lettered_at) == DEAD_LETTERED
        }
        found = _new_dead_letters(client, keys, dead, exclude={e.id for e in batch})
        for e in batch:
            ids = sorted({i for m in e.message_ids for i in found.get(m, ())})
            out[e.id] = replay_state(e, trails, ids)
    return out


def _read_trails(client: redis.Redis, keys: Keys, message_ids: set[str]) -> dict[str, Trail]:
    ordered = sorted(message_ids)
    pipe = client.pipeline(transaction=False)
    for mid in ordered:
        pipe.hmget(keys.trace(mid), ["state", "accepted_at", "outcome_at"])
    trails = {}
    for mid, (state, accepted, outcome) in zip(ordered, pipe.execute(), strict=True):
        if state is not None:
            trails[mid] = Trail(state.decode(), _float(accepted), _float(outcome))
    return trails


def _new_dead_letters(
    client: redis.Redis,
    keys: Keys,
    dead: Mapping[str, tuple[Trail, float]],
    exclude: set[str],
) -> dict[str, builtins.list[str]]:
    """messageId -> ids of the dead letters holding it that were made after the one replayed
    (looked for in the DLQ index just before each trail's outcome_at)."""
    windows = merged_windows(
        (t.outcome_at - NEW_ENTRY_WINDOW, t.outcome_at + 1.0)
        for t, _ in dead.values()
        if t.outcome_at is not None
    )
    if not windows:
        return {}
    pipe = client.pipeline(transaction=False)
    for low, high in windows:
        pipe.zrangebyscore(keys.dlq_index, low, high)
    candidates = sorted({i.decode() for ids in pipe.execute() for i in ids} - exclude)
    if not candidates:
        return {}
    raws: Any = client.mget([keys.dlq_entry(i) for i in candidates])
    found: dict[str, builtins.list[str]] = {}
    for entry_id, raw in zip(candidates, raws, strict=True):
        if raw is None:
            continue
        data = orjson.loads(raw)
        for mid in data.get("message_ids", ()):
            if mid in dead and float(data.get("dead_lettered_at", 0)) > dead[mid][1]:
                found.setdefault(mid, []).append(entry_id)
    return found


@dataclass
class Progress:
    """Where a follow stands: entries by state, events by outcome kind."""

    states: dict[str, dict[str, Any]]
    entries: int
    events: int
    elapsed: float
    timed_out: bool = False

    @property
    def kinds(self) -> Counter[str]:
        """Events by kind (done, dead, waiting, unknown)."""
        counted: Counter[str] = Counter()
        for state in self.states.values():
            for outcome, n in state["counts"].items():
                counted[kind_of(outcome)] += n
        counted["waiting"] += self.events - sum(counted.values())  # not read yet
        return counted

    @property
    def finished(self) -> bool:
        """Every entry delivered, dead or mixed."""
        return len(self.states) == self.entries and all(
            s["state"] in FINAL_STATES for s in self.states.values()
        )

    def summary(self) -> dict[str, Any]:
        """The JSON summary of `dlq replay --wait` (names documented in docs/dlq.md)."""
        by_state = Counter(s["state"] for s in self.states.values())
        outcomes: Counter[str] = Counter()
        for s in self.states.values():
            outcomes.update(s["counts"])
        dead_again = sorted(i for i, s in self.states.items() if s["state"] in ("dead", "mixed"))
        return {
            "entries": self.entries,
            "events": self.events,
            "by_state": {name: by_state.get(name, 0) for name in _STATE_NAMES},
            "outcomes": dict(sorted(outcomes.items())),
            "dead_again": dead_again,
            "new_dead_letters": sorted(
                {i for s in self.states.values() for i in s["dead_letter_ids"]}
            ),
            "timed_out": self.timed_out,
            "seconds": round(self.elapsed, 1),
        }


_STATE_NAMES = ("delivered", "dead", "mixed", "waiting", "unknown")


def follow(
    client: redis.Redis,
    keys: Keys,
    entries: Sequence[DlqEntry],
    *,
    timeout: float,
    on_progress: Callable[[Progress], None],
    poll: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Progress:
    """Read the entries' states until every one is final or `timeout` seconds pass; entries
    already final are not read again."""
    started = clock()
    states: dict[str, dict[str, Any]] = {}
    events = sum(len(e.message_ids) for e in entries)
    while True:
        pending = [e for e in entries if states.get(e.id, {}).get("state") not in FINAL_STATES]
        states.update(read_replay_states(client, keys, pending))
        progress = Progress(states, len(entries), events, clock() - started)
        if progress.finished:
            on_progress(progress)
            return progress
        if progress.elapsed >= timeout:
            progress.timed_out = True
            on_progress(progress)
            return progress
        on_progress(progress)
        sleep(min(poll, max(0.0, timeout - progress.elapsed)))


def merged_windows(windows: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping [low, high] windows merged, in order (one index read each)."""
    merged: list[tuple[float, float]] = []
    for low, high in sorted(windows):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def _float(raw: bytes | None) -> float | None:
    return None if raw is None else float(raw)


def read_replayed_states(
    client: redis.Redis, keys: Keys, entries: Sequence[DlqEntry]
) -> dict[str, dict[str, Any]]:
    """`read_replay_states` of those among `entries` whose status is replayed (a page's rows)."""
    replayed = [e for e in entries if e.status == STATUS_REPLAYED]
    return read_replay_states(client, keys, replayed) if replayed else {}
