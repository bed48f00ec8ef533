"""End to end with real Celery worker processes, real Redis, the real API deliverer and the
ChartMogul sandbox over HTTP: dedupe, coalescing, order, races, retries, pauses and the DLQ."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cmrelay.dlq.entry import REASON_EXPIRED, REASON_PARTIAL, REASON_PERMANENT
from tests.support.events import envelope
from tests.support.processes import wait_for
from tests.support.sandbox_relay import (
    DATA_SOURCE,
    SandboxRelay,
    group_event,
    message_id,
    new_customer,
    sandbox_relay,
)
from worker.celery_app import create_celery_app, publish_deliveries

RETRY_WINDOW = 3


@pytest.fixture(scope="module")
def relay(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRelay]:
    log_dir = tmp_path_factory.mktemp("e2e")
    with sandbox_relay(redis_url, log_dir, RETRY_WINDOW=str(RETRY_WINDOW)) as relay:
        cid, entity = new_customer()
        warmup = group_event(cid)
        relay.push(warmup)
        relay.wait_delivered(entity, [message_id(warmup)], timeout=60)
        yield relay


@pytest.fixture(autouse=True)
def _clear_rules(relay: SandboxRelay) -> Iterator[None]:
    yield
    relay.rules()


def custom(relay: SandboxRelay, cid: str) -> dict[str, Any]:
    """The customer's custom attributes in the sandbox."""
    found: dict[str, Any] = relay.customers(cid)[cid]["attributes"]["custom"]
    return found


def test_same_message_id_twice_is_delivered_once(relay: SandboxRelay) -> None:
    cid, entity = new_customer()
    raw = group_event(cid, {"plan": "pro"})
    duplicates_before = relay.counter("duplicate")
    relay.push(raw, raw)
    relay.wait_delivered(entity, [message_id(raw)])
    relay.push(raw)  # Segment retrying after our 2xx
    wait_for(lambda: relay.counter("duplicate") >= duplicates_before + 2, 10, "dedupe counted")
    assert relay.outcomes()[(message_id(raw), "delivered")] == 1
    assert relay.creates(cid) == 1 and custom(relay, cid)["plan"] == "pro"


def test_a_burst_is_coalesced_into_one_delivery(relay: SandboxRelay) -> None:
    cid, entity = new_customer()
    burst = [group_event(cid, {"seq": i}) for i in range(20)]
    relay.push(*burst)
    relay.wait_delivered(entity, [message_id(r) for r in burst])
    calls = [(r["method"], r["path"]) for r in relay.requests(cid)]
    assert calls == [("POST", "/v1/customers")]  # one create for 20 events of a new customer
    assert custom(relay, cid)["seq"] == 19


def test_an_older_event_arriving_later_never_overwrites_a_newer_value(
    relay: SandboxRelay,
) -> None:
    cid, entity = new_customer()
    newer = group_event(cid, {"name": "New"}, timestamp="2026-03-02T00:00:00Z")
    relay.push(newer)
    relay.wait_delivered(entity, [message_id(newer)])
    older = group_event(cid, {"name": "Old", "city": "Oslo"}, timestamp="2026-03-01T00:00:00Z")
    relay.push(older)
    relay.wait_delivered(entity, [message_id(older)])
    customer = relay.customers(cid)[cid]
    assert (customer["name"], customer["city"]) == ("New", "Oslo")


def test_concurrent_deliveries_of_a_new_customer_create_it_once(relay: SandboxRelay) -> None:
    cid, entity = new_customer()
    relay.rules({"match": cid, "latency": 0.2})  # every call slow: a wide window for a race
    first = group_event(cid, {"n": 1})
    relay.push(first)
    # Ten deliver tasks at once, as a redelivery storm would publish them, to both workers.
    app = create_celery_app(relay.settings)
    publish_deliveries(app, [entity] * 10)
    later = group_event(cid, {"n": 2})
    relay.push(later)
    publish_deliveries(app, [entity] * 10)
    relay.wait_delivered(entity, [message_id(first), message_id(later)])
    assert relay.creates(cid) == 1
    assert all(r["status"] < 400 for r in relay.requests(cid))
    assert relay.dead_letters(entity) == [] and custom(relay, cid)["n"] == 2


def test_a_429_with_retry_after_holds_back_every_worker(relay: SandboxRelay) -> None:
    since = relay.requests()[-1]["seq"]
    customers = [new_customer() for _ in range(6)]
    relay.rules({"status": 429, "times": 1, "retry_after": 2})
    events = [group_event(cid) for cid, _ in customers]
    relay.push(*events)
    for (_, entity), raw in zip(customers, events, strict=True):
        relay.wait_delivered(entity, [message_id(raw)])
    calls = relay.requests(since=since)
    hit = next(c for c in calls if c["status"] == 429)
    # Margins: calls granted just before the 429 was seen may still land; 2 s is Retry-After.
    quiet = [c for c in calls if hit["at"] + 0.3 < c["at"] < hit["at"] + 1.8]
    assert quiet == []  # nobody called while Retry-After ran, whichever worker they were on


def test_an_outage_is_ridden_out_with_backoff_then_delivered(relay: SandboxRelay) -> None:
    cid, entity = new_customer()
    relay.rules({"match": cid, "status": 502, "seconds": 1.0})
    raw = group_event(cid)
    relay.push(raw)
    relay.wait_delivered(entity, [message_id(raw)])
    failed = [r for r in relay.requests(cid) if r["status"] == 502]
    assert len(failed) >= 3  # backed off and tried again, several times, within the window
    assert relay.dead_letters(entity) == [] and relay.creates(cid) == 1


def test_an_outage_longer_than_the_retry_window_dead_letters(relay: SandboxRelay) -> None:
    cid, entity = new_customer()
    relay.rules({"match": cid, "status": 502})
    raw = group_event(cid)
    relay.push(raw)
    entry = wait_for(lambda: relay.dead_letters(entity), 20, "a dead letter")[0]
    assert entry.reason == REASON_EXPIRED and entry.message_ids == (message_id(raw),)
    assert entry.attempts >= 2 and entry.last_attempt_at - entry.first_attempt_at >= RETRY_WINDOW
    wait_for(lambda: relay.settled(entity), 5, "the mailbox drained")


def test_a_permanent_error_dead_letters_at_once_and_replay_delivers_once(
    relay: SandboxRelay,
) -> None:
    cid, entity = new_customer()
    relay.rules({"match": cid, "method": "POST", "status": 400})
    raw = group_event(cid, {"plan": "pro"})
    relay.push(raw)
    entry = wait_for(lambda: relay.dead_letters(entity), 15, "a dead letter")[0]
    assert entry.reason == REASON_PERMANENT and entry.attempts == 1
    assert entry.status_code == 400 and relay.customers(cid) == {}
    relay.rules()  # the operator fixed the cause
    assert relay.dlq.replay([entry.id, entry.id]) == [entry.id]
    assert relay.dlq.replay([entry.id]) == []
    wait_for(lambda: relay.customers(cid), 15, "the replayed create")
    wait_for(lambda: relay.settled(entity), 5, "the mailbox drained")
    assert relay.creates(cid) == 1 and custom(relay, cid)["plan"] == "pro"


def test_one_refused_contact_is_dead_lettered_alone(relay: SandboxRelay) -> None:
    cid, entity = new_customer()
    good_user, bad_user = f"good-{cid}", f"bad-{cid}"
    relay.rules({"match": f'"{bad_user}"', "method": "POST", "status": 422})
    good = envelope(user_id=good_user, traits={"email": "g@x.test", "company": {"id": cid}})
    bad = envelope(user_id=bad_user, traits={"email": "b@x.test", "company": {"id": cid}})
    relay.push(good, bad)
    relay.wait_delivered(entity, [message_id(good)])
    (entry,) = relay.dead_letters(entity)
    assert entry.reason == REASON_PARTIAL and entry.message_ids == (message_id(bad),)
    contacts = {c["external_id"] for c in relay.contacts_of(cid)}
    assert contacts == {good_user}


def test_a_401_pauses_everyone_and_a_probe_resumes(relay: SandboxRelay) -> None:
    (cid_a, a), (cid_b, b) = new_customer(), new_customer()
    relay.rules({"status": 401})
    first = group_event(cid_a)
    relay.push(first)
    wait_for(lambda: relay.client.get(relay.keys.pause), 15, "the pause")
    second = group_event(cid_b)
    relay.push(second)
    probes = lambda: relay.requests("/v1/data_sources/")  # noqa: E731
    seen = len(probes())
    wait_for(lambda: len(probes()) >= seen + 3, 15, "probes while paused")
    assert relay.requests(cid_b) == []  # no delivery calls while paused
    assert relay.client.llen(relay.keys.mailbox(a)) == 1  # events kept
    relay.rules()
    relay.wait_delivered(a, [message_id(first)])
    relay.wait_delivered(b, [message_id(second)])
    assert relay.client.get(relay.keys.pause) is None


def test_identify_group_identify_ends_as_one_customer_with_one_contact(
    relay: SandboxRelay,
) -> None:
    cid, entity = new_customer()
    user = f"lead-{cid}"
    first = envelope(user_id=user, traits={"email": f"{user}@x.test", "firstName": "Lee"})
    relay.push(first)
    relay.wait_delivered(f"customer:{user}", [message_id(first)])
    assert relay.customers(user)  # the default policy made the user a lead customer
    joined = envelope("group", user_id=user, group_id=cid, traits={"name": "Joined Co"})
    relay.push(joined)
    relay.wait_delivered(entity, [message_id(joined)])
    again = envelope(user_id=user, traits={"email": f"{user}@x.test", "title": "CTO"})
    relay.push(again)
    relay.wait_delivered(entity, [message_id(again)])
    assert relay.customers(user, cid).keys() == {cid}  # the lead was merged into the company
    contacts = [c for c in relay.state()["contacts"] if c["external_id"] == user]
    assert [(c["customer_external_id"], c["title"]) for c in contacts] == [(cid, "CTO")]


@pytest.mark.parametrize("lookups_list_merged_ids", [True, False])
def test_a_customer_merged_while_its_uuid_is_held_keeps_getting_its_events(
    relay: SandboxRelay, lookups_list_merged_ids: bool
) -> None:
    relay.behave(lookup_matches_merged=lookups_list_merged_ids)
    try:
        cid, entity = new_customer()
        first = group_event(cid, {"seats": 1, "email": f"ap@{cid}.test"})
        relay.push(first)
        relay.wait_delivered(entity, [message_id(first)])
        segment_uuid = relay.customers(cid)[cid]["uuid"]
        billing = relay.api("POST", "/customers", json={
            "data_source_uuid": DATA_SOURCE, "external_id": f"billing-{cid}", "name": "Billing",
        })["uuid"]  # fmt: skip
        relay.api("POST", "/customers/merges", json={
            "from": {"customer_uuid": segment_uuid}, "into": {"customer_uuid": billing},
        })  # fmt: skip
        later = group_event(cid, {"seats": 7, "email": f"ap@{cid}.test"})
        relay.push(later)
        relay.wait_delivered(entity, [message_id(later)])
        [survivor] = [c for c in relay.state()["customers"] if c["uuid"] == billing]
        assert survivor["attributes"]["custom"]["seats"] == 7
        assert relay.dead_letters(entity) == []
    finally:
        relay.behave(lookup_matches_merged=True)


def test_contact_fields_chartmogul_drops_are_counted_and_not_resent(relay: SandboxRelay) -> None:
    relay.behave(contact_custom="drop")
    try:
        cid, entity = new_customer()
        user = f"d-{cid}"
        traits = {"email": f"{user}@x.test", "facebook": "fb", "company": {"id": cid}}
        first = envelope(user_id=user, traits=traits)
        before = relay.counter("dropped_by_chartmogul")
        relay.push(first)
        relay.wait_delivered(entity, [message_id(first)])
        assert relay.counter("dropped_by_chartmogul") == before + 1
        since = relay.requests()[-1]["seq"]
        again = envelope(user_id=user, traits=traits)
        relay.push(again)
        relay.wait_delivered(entity, [message_id(again)])
        assert relay.requests(user, since=since) == []  # not sent again while unchanged
        assert relay.outcomes()[(message_id(again), "unchanged")] == 1
    finally:
        relay.behave(contact_custom="store")
