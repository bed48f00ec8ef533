"""What became of a replayed dead letter: the pure classification, then the reader against the
real Redis with trails and dead letters written by the real accept and delivery steps."""

from __future__ import annotations

import pytest
import redis

from cmrelay.dlq.entry import DlqEntry
from cmrelay.dlq.follow import (
    NO_TRAIL,
    QUEUED,
    Progress,
    Trail,
    entry_state,
    event_outcome,
    follow,
    kind_of,
    merged_windows,
    read_replay_states,
    replay_state,
)
from cmrelay.dlq.store import DeadLetterQueue, DlqFilter
from cmrelay.errors import PermanentDeliveryError
from tests.support.events import envelope
from tests.support.scripted import ScriptedDeliverer
from worker.pipeline.accept import accept_batch
from worker.pipeline.deliver import deliver_entity
from worker.pipeline.engine import Engine


# --- pure ---------------------------------------------------------------------------------
def test_a_trail_older_than_the_dead_letter_means_the_replay_is_still_queued() -> None:
    assert event_outcome(Trail("dead_lettered", 100.0, 101.0), 101.0) == QUEUED
    assert event_outcome(Trail("dead_lettered", 102.0, 103.0), 101.0) == "dead_lettered"
    assert event_outcome(Trail("delivered", 102.0, 103.0), 101.0) == "delivered"
    assert event_outcome(None, 101.0) == NO_TRAIL


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [
        ("delivered", "done"),
        ("unchanged", "done"),
        ("skipped", "done"),
        ("ignored:type_track", "done"),
        ("skipped:no customer id", "done"),
        ("filtered:not in FILTER", "done"),
        ("dead_lettered", "dead"),
        (QUEUED, "waiting"),
        ("accepted", "waiting"),
        ("retrying", "waiting"),
        ("waiting_for_group", "waiting"),
        (NO_TRAIL, "unknown"),
        ("something new", "unknown"),
    ],
)
def test_each_outcome_has_a_kind(outcome: str, kind: str) -> None:
    assert kind_of(outcome) == kind


def test_an_entry_waits_while_any_event_does_and_is_mixed_when_some_died_again() -> None:
    assert entry_state(["delivered", "accepted"]) == "waiting"
    assert entry_state(["delivered", NO_TRAIL, QUEUED]) == "waiting"
    assert entry_state(["delivered", NO_TRAIL]) == "unknown"
    assert entry_state([]) == "unknown"
    assert entry_state(["delivered", "unchanged", "ignored:type_page"]) == "delivered"
    assert entry_state(["dead_lettered", "dead_lettered"]) == "dead"
    assert entry_state(["dead_lettered", "delivered"]) == "mixed"


def test_replay_state_counts_outcomes_per_event(dead_entry: DlqEntry) -> None:
    trails = {"a": Trail("delivered", 200.0, 201.0), "b": Trail("accepted", 50.0, None)}
    state = replay_state(dead_entry, trails, ["new1"])
    assert state == {
        "state": "waiting",
        "counts": {"delivered": 1, QUEUED: 1, NO_TRAIL: 1},
        "dead_letter_ids": ["new1"],
    }


@pytest.fixture
def dead_entry() -> DlqEntry:
    return DlqEntry(
        id="e1", entity="customer:x", reason="permanent", error_class="E", last_error="",
        attempts=1, first_attempt_at=90.0, last_attempt_at=100.0, dead_lettered_at=100.0,
        message_ids=("a", "b", "c"), events=("{}", "{}", "{}"),
    )  # fmt: skip


def test_windows_are_merged_when_they_overlap() -> None:
    assert merged_windows([(5, 7), (0, 2), (1, 3), (7, 8)]) == [(0, 3), (5, 8)]
    assert merged_windows([]) == []


def test_the_summary_names_entries_dead_again_and_their_new_dead_letters() -> None:
    states = {
        "ok": {"state": "delivered", "counts": {"delivered": 2}, "dead_letter_ids": []},
        "bad": {"state": "dead", "counts": {"dead_lettered": 1}, "dead_letter_ids": ["n1"]},
        "half": {
            "state": "mixed",
            "counts": {"dead_lettered": 1, "unchanged": 1},
            "dead_letter_ids": ["n2"],
        },
    }
    progress = Progress(states, entries=4, events=7, elapsed=3.21)
    assert not progress.finished  # one entry not read yet
    assert progress.kinds == {"done": 3, "dead": 2, "waiting": 2}
    summary = progress.summary()
    assert summary["by_state"] == {
        "delivered": 1, "dead": 1, "mixed": 1, "waiting": 0, "unknown": 0,
    }  # fmt: skip
    assert summary["dead_again"] == ["bad", "half"]
    assert summary["new_dead_letters"] == ["n1", "n2"]
    assert summary["outcomes"] == {"dead_lettered": 2, "delivered": 2, "unchanged": 1}
    assert summary["seconds"] == 3.2 and summary["timed_out"] is False


# --- against the real Redis, with the real pipeline -----------------------------------------
def _reject() -> None:
    raise PermanentDeliveryError("Unprocessable", status=422, body='{"error":"bad"}')


def _dead_letter(engine: Engine, deliverer: ScriptedDeliverer, user: str, *mids: str) -> DlqEntry:
    raws = [envelope(user_id=user, message_id=m) for m in mids]
    engine.redis.lpush(engine.keys.ingest_queue, *raws)
    accept_batch(engine)
    deliverer.fail = _reject
    assert deliver_entity(engine, f"customer:{user}") == "dead_lettered"
    deliverer.fail = None
    (entry,) = DeadLetterQueue(engine.redis, engine.keys, 3600).list(
        DlqFilter(entity=f"customer:{user}")
    )
    return entry


def test_a_replay_is_followed_from_the_queue_to_delivery(
    engine: Engine, deliverer: ScriptedDeliverer
) -> None:
    entry = _dead_letter(engine, deliverer, "fw1", "fw1-a", "fw1-b")
    dlq = DeadLetterQueue(engine.redis, engine.keys, 3600)
    assert dlq.replay([entry.id]) == [entry.id]
    state = read_replay_states(engine.redis, engine.keys, [entry])[entry.id]
    assert state == {"state": "waiting", "counts": {QUEUED: 2}, "dead_letter_ids": []}
    accept_batch(engine)
    state = read_replay_states(engine.redis, engine.keys, [entry])[entry.id]
    assert state["state"] == "waiting" and state["counts"] == {"accepted": 2}
    assert deliver_entity(engine, "customer:fw1") == "delivered"
    state = read_replay_states(engine.redis, engine.keys, [entry])[entry.id]
    assert state == {"state": "delivered", "counts": {"delivered": 2}, "dead_letter_ids": []}


def test_a_replay_that_dies_again_names_the_new_dead_letter_only(
    engine: Engine, deliverer: ScriptedDeliverer
) -> None:
    entry = _dead_letter(engine, deliverer, "fw2", "fw2-a")
    other = _dead_letter(engine, deliverer, "fw3", "fw3-a")  # same moment, other customer
    dlq = DeadLetterQueue(engine.redis, engine.keys, 3600)
    dlq.replay([entry.id])
    accept_batch(engine)
    deliverer.fail = _reject
    assert deliver_entity(engine, "customer:fw2") == "dead_lettered"
    new = [e.id for e in dlq.list(DlqFilter(entity="customer:fw2")) if e.id != entry.id]
    state = read_replay_states(engine.redis, engine.keys, [entry, other])
    assert state[entry.id] == {
        "state": "dead", "counts": {"dead_lettered": 1}, "dead_letter_ids": new,
    }  # fmt: skip
    assert len(new) == 1 and new[0] != other.id
    assert state[other.id]["counts"] == {QUEUED: 1}  # never replayed: the old trail


def test_an_expired_trail_is_unknown(
    engine: Engine, deliverer: ScriptedDeliverer, client: redis.Redis
) -> None:
    entry = _dead_letter(engine, deliverer, "fw4", "fw4-a")
    client.delete(engine.keys.trace("fw4-a"))
    state = read_replay_states(engine.redis, engine.keys, [entry])[entry.id]
    assert state == {"state": "unknown", "counts": {NO_TRAIL: 1}, "dead_letter_ids": []}


def test_follow_stops_at_the_timeout_and_reads_each_final_entry_once(
    engine: Engine, deliverer: ScriptedDeliverer
) -> None:
    entry = _dead_letter(engine, deliverer, "fw5", "fw5-a")
    dlq = DeadLetterQueue(engine.redis, engine.keys, 3600)
    dlq.replay([entry.id])
    now = [0.0]
    seen: list[Progress] = []

    def sleep(seconds: float) -> None:  # a test clock: the loop's waits advance it
        now[0] += seconds

    result = follow(engine.redis, engine.keys, [entry], timeout=2.0, on_progress=seen.append,
                    clock=lambda: now[0], sleep=sleep)  # fmt: skip
    assert result.timed_out and result.summary()["by_state"]["waiting"] == 1
    assert len(seen) == 5  # at 0, 0.5, 1, 1.5 and 2 s
    accept_batch(engine)
    assert deliver_entity(engine, "customer:fw5") == "delivered"
    result = follow(engine.redis, engine.keys, [entry], timeout=2.0, on_progress=seen.append,
                    clock=lambda: now[0], sleep=sleep)  # fmt: skip
    assert result.finished and not result.timed_out and result.summary()["dead_again"] == []
