"""Accept: claim from the ingest list, dedupe, route to mailboxes, hold users until grouped."""

from __future__ import annotations

from dataclasses import replace

import redis

from cmrelay.envelope import Envelope
from cmrelay.lua import AcceptItem
from tests.support.events import envelope
from worker.pipeline.accept import accept_batch, reap_expired_claims
from worker.pipeline.engine import Engine


def _push(client: redis.Redis, engine: Engine, *items: bytes) -> None:
    client.lpush(engine.keys.ingest_queue, *items)


def _counters(client: redis.Redis, engine: Engine) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(engine.keys.counters).items()}


def test_same_message_id_twice_lands_in_the_mailbox_once(
    engine: Engine, client: redis.Redis
) -> None:
    raw = envelope(message_id="dup-1", traits={"company": {"id": "c1"}})
    _push(client, engine, raw, raw)
    assert accept_batch(engine) == 2
    assert client.lrange(engine.keys.mailbox("customer:c1"), 0, -1) == [raw]
    assert _counters(client, engine) == {"accepted": 1, "duplicate": 1}
    assert client.zscore(engine.keys.due, "customer:c1") is not None
    assert client.ttl(engine.keys.dedupe("wk_test", "dup-1")) > 86_000


def test_same_message_id_from_two_sources_is_not_a_duplicate(
    engine: Engine, client: redis.Redis
) -> None:
    _push(
        client, engine, envelope(message_id="m", source="a"), envelope(message_id="m", source="b")
    )
    accept_batch(engine)
    assert client.llen(engine.keys.mailbox("customer:u1")) == 2


def test_events_keep_arrival_order_and_other_types_are_counted(
    engine: Engine, client: redis.Redis
) -> None:
    first, second = envelope(traits={"n": 1}), envelope(traits={"n": 2})
    _push(client, engine, first, envelope("track"), second, envelope(user_id=None))
    accept_batch(engine)
    assert client.lrange(engine.keys.mailbox("customer:u1"), 0, -1) == [first, second]
    counters = _counters(client, engine)
    assert counters["ignored:type_track"] == 1
    skipped = [name for name in counters if name.startswith("skipped:")]
    assert skipped == [
        "skipped:identify with only an anonymousId and no email: nothing ChartMogul can key on"
    ]


def test_identify_waits_for_a_group_call_then_joins_its_customer(
    engine: Engine, client: redis.Redis
) -> None:
    engine.settings = replace(engine.settings, company_creation="group")
    waiting = envelope(user_id="u9", traits={"email": "a@b.c"})
    _push(client, engine, waiting)
    accept_batch(engine)
    assert client.lrange(engine.keys.waiting_for_group("u9"), 0, -1) == [waiting]
    assert client.zcard(engine.keys.due) == 0
    group = envelope("group", user_id="u9", group_id="g7")
    _push(client, engine, group)
    accept_batch(engine)
    assert client.lrange(engine.keys.mailbox("customer:g7"), 0, -1) == [group, waiting]
    assert client.exists(engine.keys.waiting_for_group("u9")) == 0
    later = envelope(user_id="u9", traits={"title": "CEO"})
    _push(client, engine, later)
    accept_batch(engine)
    assert client.lrange(engine.keys.mailbox("customer:g7"), -1, -1) == [later]


def test_replayed_envelope_skips_the_dedupe_check(engine: Engine, client: redis.Redis) -> None:
    raw = envelope(message_id="again")
    _push(client, engine, raw)
    accept_batch(engine)
    client.delete(engine.keys.mailbox("customer:u1"))
    _push(client, engine, replace(Envelope.from_bytes(raw), replay=True).to_bytes())
    accept_batch(engine)
    assert client.llen(engine.keys.mailbox("customer:u1")) == 1


def test_a_dead_accepters_claim_goes_back_to_the_queue_in_order(
    engine: Engine, client: redis.Redis
) -> None:
    items = [envelope(traits={"i": i}) for i in range(3)]
    _push(client, engine, *items)
    # Claim like an accepter that dies right after: the claim script, then nothing.
    claimed = engine.scripts.accept_claim("dead", limit=10, claim_seconds=-1)  # already past
    assert claimed == items
    assert client.llen(engine.keys.ingest_queue) == 0
    assert reap_expired_claims(engine) == 3
    assert client.exists(engine.keys.accepting("dead")) == 0
    accept_batch(engine)
    assert client.lrange(engine.keys.mailbox("customer:u1"), 0, -1) == items


def test_a_commit_after_the_claim_was_reaped_changes_nothing(
    engine: Engine, client: redis.Redis
) -> None:
    raw = envelope()
    _push(client, engine, raw)
    keys = engine.keys
    engine.scripts.accept_claim("slow", limit=10, claim_seconds=-1)
    reap_expired_claims(engine)
    item = AcceptItem("m", raw, "accepted", keys.dedupe("wk_test", "x"),
                      keys.mailbox("customer:u1"), entity="customer:u1")  # fmt: skip
    queued = engine.scripts.accept_commit(
        "slow", [item], coalesce_seconds=0, dedupe_ttl=60, waiting_ttl=60
    )
    assert queued == -1
    assert client.llen(keys.mailbox("customer:u1")) == 0
    assert client.lrange(keys.ingest_queue, 0, -1) == [raw]


def test_a_long_waiting_list_joins_its_customer_whole(engine: Engine, client: redis.Redis) -> None:
    engine.settings = replace(engine.settings, company_creation="group")
    waiting = [
        envelope(user_id="u5", traits={"i": i}) for i in range(9000)
    ]  # past unpack()'s limit
    for start in range(0, len(waiting), 500):
        _push(client, engine, *waiting[start : start + 500])
        while accept_batch(engine):
            pass
    assert client.llen(engine.keys.waiting_for_group("u5")) == 9000
    _push(client, engine, envelope("group", user_id="u5", group_id="g1"))
    accept_batch(engine)
    assert client.llen(engine.keys.mailbox("customer:g1")) == 9001
