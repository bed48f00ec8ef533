"""The API deliverer against the real sandbox over HTTP, with the session's real Redis."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis

from cmrelay.errors import PermanentDeliveryError
from cmrelay.keys import Keys
from cmrelay.settings import Secret, Settings
from sandbox.runner import SandboxServer
from tests.support.sandbox_relay import API_KEY as SANDBOX_KEY
from tests.support.sandbox_relay import DATA_SOURCE as SANDBOX_DS
from worker.delivery.api.cache import RelayCache
from worker.delivery.api.client import ChartMogulClient
from worker.delivery.api.deliverer import ApiDeliverer
from worker.delivery.api.held_store import HeldStore
from worker.delivery.counting import CountingGate
from worker.mapping import MappingPolicy

KEY, DS = SANDBOX_KEY, SANDBOX_DS
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _deliverer(sandbox: SandboxServer, redis_url: str, client_cls: type = ChartMogulClient) -> Any:
    settings = dataclasses.replace(
        Settings(), redis_url=redis_url, key_prefix=f"d{uuid.uuid4().hex[:8]}",
        chartmogul_api_key=Secret(KEY), chartmogul_api_base=sandbox.base_url,
        chartmogul_data_source_uuid=DS,
    )  # fmt: skip
    counting = CountingGate(None)
    client = client_cls.from_settings(settings, counting)
    cache = RelayCache(redis.Redis.from_url(redis_url), Keys(settings.key_prefix))
    held = HeldStore(cache.redis, cache.keys, settings.confirmed_state_ttl)
    return ApiDeliverer(client, cache, MappingPolicy(), counting, held)


@pytest.fixture
def deliverer(sandbox: SandboxServer, redis_url: str, state: Any) -> Iterator[ApiDeliverer]:
    d = _deliverer(sandbox, redis_url)
    yield d
    d.close()


def _event(kind: str, seconds: int, **fields: Any) -> dict[str, Any]:
    when = (T0 + timedelta(seconds=seconds)).isoformat()
    return {"type": kind, "messageId": uuid.uuid4().hex, "timestamp": when, **fields}


def _group(cid: str, seconds: int, **traits: Any) -> dict[str, Any]:
    return _event("group", seconds, userId="u1", groupId=cid, traits=traits)


def test_a_new_customer_is_created_with_its_attributes_and_contacts(
    deliverer: ApiDeliverer, state: Any
) -> None:
    group = _event("group", 1, userId="u1", groupId="acme", traits={
        "name": "Acme", "address": {"city": "Berlin", "country": "Germany"}, "seats": 12,
        "paying": True, "score": 2.5, "plan": "pro", "renews": "2026-05-01T00:00:00Z",
    })  # fmt: skip
    ident = _event("identify", 2, userId="u1", traits={
        "email": "ann@acme.test", "firstName": "Ann", "lastName": "Lee", "company": {"id": "acme"},
    })  # fmt: skip
    outcome = deliverer.deliver("customer:acme", [group, ident], {})
    dump = state()
    [customer] = dump["customers"]
    assert (customer["external_id"], customer["name"], customer["country"]) == (
        "acme", "Acme", "DE",
    )  # fmt: skip
    custom = customer["attributes"]["custom"]
    assert custom["seats"] == 12 and custom["paying"] is True and custom["score"] == 2.5
    assert custom["plan"] == "pro" and custom["renews"].startswith("2026-05-01T00:00:00")
    [contact] = dump["contacts"]
    assert (contact["external_id"], contact["email"], contact["first_name"]) == (
        "u1", "ann@acme.test", "Ann",
    )  # fmt: skip
    # create customer, create contact: a customer the relay never saw is created first, and
    # one it just made has no contacts to list
    assert outcome.calls == 2
    assert "std:name" in outcome.clock_updates
    assert [op["op"] for op in outcome.planned_operations] == ["create_customer", "create_contact"]


def test_a_known_customer_costs_no_lookup_and_contacts_are_not_duplicated(
    deliverer: ApiDeliverer, state: Any
) -> None:
    deliverer.deliver("customer:c1", [_group("c1", 1, name="One", seats=1)], {})
    deliverer.deliver("customer:c1", [_event("identify", 2, userId="u1",
                                              traits={"email": "a@c1.test"})], {})  # fmt: skip
    outcome = deliverer.deliver("customer:c1", [
        _event("group", 3, userId="u1", groupId="c1", traits={"seats": 2.0, "tier": "gold"}),
        _event("identify", 4, userId="u1", traits={"email": "a@c1.test", "title": "CTO"}),
    ], {})  # fmt: skip
    dump = state()
    assert len(dump["customers"]) == 1 and len(dump["contacts"]) == 1
    assert dump["customers"][0]["attributes"]["custom"] == {"seats": 2, "tier": "gold"}
    assert dump["contacts"][0]["title"] == "CTO"
    # one PATCH with seats (Decimal 2.0 coerced to the Integer it already is), POST tier,
    # PATCH contact
    assert outcome.calls == 3


def test_a_value_that_cannot_fit_the_existing_type_is_dropped_not_fatal(
    deliverer: ApiDeliverer, state: Any
) -> None:
    deliverer.deliver("customer:c2", [_group("c2", 1, seats=5)], {})
    deliverer.deliver("customer:c2", [_group("c2", 2, seats="many", plan="x")], {})
    custom = state()["customers"][0]["attributes"]["custom"]
    assert custom == {"seats": 5, "plan": "x"}
    counters = deliverer.cache.redis.hgetall(deliverer.cache.keys.counters)
    assert int(counters[b"dropped_attributes"]) == 1


def _delivered_then_deleted(
    deliverer: ApiDeliverer, sandbox: SandboxServer, state: Any, cid: str
) -> str:
    """Deliver a new customer (its uuid is cached), then delete it behind the relay's back."""
    deliverer.deliver(f"customer:{cid}", [_group(cid, 1, name=cid)], {})
    gone: str = state()["customers"][0]["uuid"]
    httpx.delete(f"{sandbox.base_url}/customers/{gone}", auth=(KEY, "")).raise_for_status()
    return gone


def test_a_cached_uuid_that_is_gone_is_looked_up_again(
    deliverer: ApiDeliverer, sandbox: SandboxServer, state: Any
) -> None:
    gone = _delivered_then_deleted(deliverer, sandbox, state, "c3")
    deliverer.deliver("customer:c3", [_group("c3", 2, name="Three again")], {})
    [customer] = state()["customers"]
    assert customer["uuid"] != gone and customer["name"] == "Three again"


def test_a_cached_customer_that_is_gone_is_made_again_for_a_contact_only_change(
    deliverer: ApiDeliverer, sandbox: SandboxServer, state: Any
) -> None:
    gone = _delivered_then_deleted(deliverer, sandbox, state, "c5")
    ident = _event(
        "identify", 2, userId="u5", traits={"email": "u5@x.test", "company": {"id": "c5"}}
    )
    outcome = deliverer.deliver("customer:c5", [ident], {})
    assert outcome.results == []
    dump = state()
    [customer] = dump["customers"]
    assert customer["uuid"] != gone and customer["external_id"] == "c5"
    assert [c["external_id"] for c in dump["contacts"]] == ["u5"]


class _RefusesBob(ChartMogulClient):
    def create_contact(self, customer_uuid: str, standard: Any, custom: Any,
                       external_id: str | None) -> dict[str, Any]:  # fmt: skip
        if external_id == "bob":
            raise PermanentDeliveryError("contact refused", status=422, body="{}")
        return super().create_contact(customer_uuid, standard, custom, external_id)


def test_a_refused_contact_fails_only_its_own_events(
    sandbox: SandboxServer, redis_url: str, state: Any
) -> None:
    deliverer = _deliverer(sandbox, redis_url, _RefusesBob)
    ann = _event(
        "identify", 1, userId="ann", traits={"email": "ann@x.test", "company": {"id": "c4"}}
    )
    bob = _event(
        "identify", 2, userId="bob", traits={"email": "bob@x.test", "company": {"id": "c4"}}
    )
    outcome = deliverer.deliver("customer:c4", [ann, bob], {})
    deliverer.close()
    assert [(r.message_id, r.status) for r in outcome.results] == [(bob["messageId"], "failed")]
    assert [c["external_id"] for c in state()["contacts"]] == ["ann"]
    assert not any(path.startswith("contact:bob:") for path in outcome.clock_updates)


# -- the confirmed-state record (fewest calls) ---------------------------------------------------


def test_a_repeat_that_changes_nothing_costs_no_call_and_is_unchanged(
    deliverer: ApiDeliverer, state: Any
) -> None:
    traits = {"name": "Rep", "seats": 4, "plan": "pro"}
    deliverer.deliver("customer:r1", [_group("r1", 1, **traits)], {})
    ident = _event(
        "identify", 2, userId="u1", traits={"email": "u1@r1.test", "company": {"id": "r1"}}
    )
    deliverer.deliver("customer:r1", [ident], {})
    again = [_group("r1", 3, **traits), {**ident, "messageId": "again", "timestamp": _at(4)}]
    outcome = deliverer.deliver("customer:r1", again, {})
    assert outcome.calls == 0
    assert {r.status for r in outcome.results} == {"unchanged"} and len(outcome.results) == 2
    changed = deliverer.deliver("customer:r1", [_group("r1", 5, **{**traits, "seats": 5})], {})
    assert changed.calls == 1  # one PATCH carries the changed existing key
    assert state()["customers"][0]["attributes"]["custom"]["seats"] == 5


def test_a_new_contact_on_a_known_customer_costs_one_create(
    deliverer: ApiDeliverer, state: Any
) -> None:
    deliverer.deliver("customer:k1", [_group("k1", 1, name="Known")], {})
    for n, user in enumerate(("ann", "bob", "cy")):
        ident = _event("identify", 2 + n, userId=user,
                       traits={"email": f"{user}@k1.test", "company": {"id": "k1"}})  # fmt: skip
        assert deliverer.deliver("customer:k1", [ident], {}).calls == 1
    assert sorted(c["external_id"] for c in state()["contacts"]) == ["ann", "bob", "cy"]


def test_standard_fields_and_existing_keys_change_in_one_patch(
    deliverer: ApiDeliverer, state: Any, sandbox: SandboxServer
) -> None:
    deliverer.deliver("customer:p1", [_group("p1", 1, name="P", seats=1, plan="a")], {})
    since = _last_seq(sandbox)
    outcome = deliverer.deliver("customer:p1", [_group("p1", 2, name="P2", seats=2, plan="b")], {})
    [call] = _requests(sandbox, since)
    assert (call["method"], call["path"]) == ("PATCH", f"/v1/customers/{_uuid(state, 'p1')}")
    assert call["body"] == {
        "name": "P2",
        "company": "P2",
        "attributes": {"custom": {"seats": 2, "plan": "b"}},
    }
    assert outcome.calls == 1


def test_a_customer_merged_while_its_uuid_is_held_gets_the_event_on_the_survivor(
    deliverer: ApiDeliverer, state: Any, sandbox: SandboxServer
) -> None:
    deliverer.deliver("customer:m1", [_group("m1", 1, name="Segment side", seats=1)], {})
    billing = _create_direct(sandbox, "billing-m1", "Billing side")
    _merge(sandbox, _uuid(state, "m1"), billing)
    outcome = deliverer.deliver("customer:m1", [_group("m1", 2, seats=9)], {})
    assert outcome.results == []
    [survivor] = state()["customers"]
    assert survivor["uuid"] == billing and "m1" in survivor["external_ids"]
    assert survivor["attributes"]["custom"]["seats"] == 9
    # and from then on the survivor is what the relay holds: a repeat costs nothing
    assert deliverer.deliver("customer:m1", [_group("m1", 3, seats=9)], {}).calls == 0


def test_a_customer_merged_before_the_relay_ever_saw_it_is_found_not_dead_lettered(
    deliverer: ApiDeliverer, state: Any, sandbox: SandboxServer
) -> None:
    segment = _create_direct(sandbox, "m2", "Imported by ChartMogul's own Segment source")
    billing = _create_direct(sandbox, "billing-m2", "Billing side")
    _merge(sandbox, segment, billing)
    outcome = deliverer.deliver("customer:m2", [_group("m2", 1, seats=3)], {})
    assert outcome.results == []
    [survivor] = state()["customers"]
    assert survivor["uuid"] == billing and survivor["attributes"]["custom"]["seats"] == 3


def test_a_migration_switches_to_lookup_first_and_back_when_customers_are_new(
    deliverer: ApiDeliverer, sandbox: SandboxServer
) -> None:
    existing = [f"mig{i}" for i in range(6)]
    for cid in existing:
        _create_direct(sandbox, cid, cid)
    posts = []
    for n, cid in enumerate(existing):
        since = _last_seq(sandbox)
        deliverer.deliver(f"customer:{cid}", [_group(cid, n, seats=n)], {})
        creates = [r for r in _requests(sandbox, since) if r["path"] == "/v1/customers"]
        posts.append(sum(1 for r in creates if r["method"] == "POST"))
    assert posts[:3] == [1, 1, 1]  # create first: each met an existing customer (422)
    assert posts[3:] == [0, 0, 0]  # then lookup first: no more failing creates
    for n in range(8):  # new customers: a lookup that finds nothing tips it back
        deliverer.deliver(f"customer:new{n}", [_group(f"new{n}", n, seats=1)], {})
    since = _last_seq(sandbox)
    deliverer.deliver("customer:fresh", [_group("fresh", 1, seats=1)], {})
    assert [r["method"] for r in _requests(sandbox, since)] == ["POST"]


def test_with_the_record_off_every_event_is_sent(sandbox: SandboxServer, redis_url: str) -> None:
    deliverer = _deliverer(sandbox, redis_url)
    deliverer.held.ttl = 0
    deliverer.deliver("customer:o1", [_group("o1", 1, seats=1)], {})
    assert deliverer.deliver("customer:o1", [_group("o1", 2, seats=1)], {}).calls == 1
    deliverer.close()


def _at(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def _uuid(state: Any, external_id: str) -> str:
    found: str = next(c["uuid"] for c in state()["customers"] if c["external_id"] == external_id)
    return found


def _create_direct(
    sandbox: SandboxServer, external_id: str, name: str, email: str | None = None
) -> str:
    """A customer made behind the relay's back (by ChartMogul's own importer, or billing)."""
    body = {"data_source_uuid": DS, "external_id": external_id, "name": name}
    if email:
        body["email"] = email
    response = httpx.post(f"{sandbox.base_url}/customers", json=body, auth=(KEY, ""))
    response.raise_for_status()
    made: str = response.json()["uuid"]
    return made


def _merge(sandbox: SandboxServer, source: str, target: str) -> None:
    body = {"from": {"customer_uuid": source}, "into": {"customer_uuid": target}}
    response = httpx.post(f"{sandbox.base_url}/customers/merges", json=body, auth=(KEY, ""))
    assert response.status_code == 202


def _last_seq(sandbox: SandboxServer) -> int:
    seq: int = httpx.get(f"{sandbox.control_url}/requests?since=0&match=none-xyz").json()[
        "last_seq"
    ]
    return seq


def _requests(sandbox: SandboxServer, since: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(
        f"{sandbox.control_url}/requests", params={"since": since}
    ).json()["requests"]
    return found


# -- what the real ChartMogul does that the relay must survive (sandbox behaviours) -------------


def _behave(sandbox: SandboxServer, **settings: Any) -> None:
    httpx.post(f"{sandbox.control_url}/behaviour", json=settings).raise_for_status()


def _counter(deliverer: ApiDeliverer, name: str) -> int:
    return int(deliverer.cache.redis.hget(deliverer.cache.keys.counters, name) or 0)


@pytest.mark.parametrize("with_email", [True, False])
def test_a_merged_customer_is_found_when_lookups_do_not_list_merged_ids(
    deliverer: ApiDeliverer, state: Any, sandbox: SandboxServer, with_email: bool
) -> None:
    _behave(sandbox, lookup_matches_merged=False)
    segment = _create_direct(sandbox, "m3", "Segment side")
    billing = _create_direct(sandbox, "billing-m3", "Billing side", email="ap@m3.test")
    _merge(sandbox, segment, billing)
    traits = {"seats": 4, **({"email": "ap@m3.test"} if with_email else {})}
    outcome = deliverer.deliver("customer:m3", [_group("m3", 1, **traits)], {})
    assert outcome.results == []
    [survivor] = state()["customers"]
    assert survivor["uuid"] == billing and survivor["attributes"]["custom"]["seats"] == 4
    # found once, remembered: the next change goes straight to the survivor
    assert deliverer.deliver("customer:m3", [_group("m3", 2, seats=5)], {}).calls == 1


def test_contact_fields_chartmogul_drops_are_counted_and_not_sent_again(
    deliverer: ApiDeliverer, state: Any, sandbox: SandboxServer
) -> None:
    _behave(sandbox, contact_custom="drop")
    deliverer.deliver("customer:d1", [_group("d1", 1, name="D")], {})
    traits = {"email": "a@d1.test", "facebook": "a.d1", "company": {"id": "d1"}}
    ident = _event("identify", 2, userId="a", traits=traits)
    assert deliverer.deliver("customer:d1", [ident], {}).calls == 1
    assert state()["contacts"][0]["custom"] == {}
    assert _counter(deliverer, "dropped_by_chartmogul") == 1
    again = deliverer.deliver("customer:d1", [{**ident, "messageId": "d1-again"}], {})
    assert again.calls == 0 and _counter(deliverer, "dropped_by_chartmogul") == 1


def test_a_state_chartmogul_does_not_keep_is_counted_once_not_resent(
    deliverer: ApiDeliverer, state: Any
) -> None:
    # No country: the mapping cannot tell, ChartMogul keeps a state only on US addresses.
    deliverer.deliver("customer:s1", [_group("s1", 1, name="S", state="Bavaria")], {})
    assert state()["customers"][0]["state"] is None
    assert _counter(deliverer, "dropped_by_chartmogul") == 1
    assert (
        deliverer.deliver("customer:s1", [_group("s1", 2, name="S", state="Bavaria")], {}).calls
        == 0
    )


def test_a_patch_that_ignores_a_key_new_to_the_customer_falls_back_to_the_typed_post(
    deliverer: ApiDeliverer, state: Any, sandbox: SandboxServer
) -> None:
    _behave(sandbox, patch_new_custom="ignore")
    deliverer.deliver("customer:i1", [_group("i1", 1, tier="gold")], {})  # tier exists now
    deliverer.deliver("customer:i2", [_group("i2", 2, name="Two")], {})
    deliverer.deliver("customer:i2", [_group("i2", 3, name="Two", tier="silver")], {})
    customers = {c["external_id"]: c for c in state()["customers"]}
    assert customers["i2"]["attributes"]["custom"]["tier"] == "silver"
    assert _counter(deliverer, "dropped_by_chartmogul") == 0


def test_a_lead_that_joins_a_company_is_merged_into_it_and_stays_one_contact(
    deliverer: ApiDeliverer, state: Any
) -> None:
    ident = {"email": "ann@lead.test", "firstName": "Ann"}
    deliverer.deliver("customer:ann", [_event("identify", 1, userId="ann", traits=ident)], {})
    assert [c["external_id"] for c in state()["customers"]] == ["ann"]  # the lead
    group = _event("group", 2, userId="ann", groupId="acme", traits={"name": "Acme"})
    outcome = deliverer.deliver("customer:acme", [group], {})
    assert [op["op"] for op in outcome.planned_operations] == ["create_customer", "merge_customers"]
    later = _event("identify", 3, userId="ann", traits={**ident, "title": "CTO"})
    deliverer.deliver("customer:acme", [later], {})
    dump = state()
    [company] = dump["customers"]
    assert company["external_id"] == "acme"
    [contact] = dump["contacts"]
    assert (contact["external_id"], contact["customer_external_id"], contact["title"]) == (
        "ann", "acme", "CTO",
    )  # fmt: skip
    assert _counter(deliverer, "leads_merged") == 1


def test_with_lead_joins_company_keep_the_lead_stays(deliverer: ApiDeliverer, state: Any) -> None:
    deliverer.merge_leads = False
    ident = {"email": "bo@lead.test"}
    deliverer.deliver("customer:bo", [_event("identify", 1, userId="bo", traits=ident)], {})
    group = _event("group", 2, userId="bo", groupId="bco", traits={"name": "B Co"})
    deliverer.deliver("customer:bco", [group], {})
    assert sorted(c["external_id"] for c in state()["customers"]) == ["bco", "bo"]


def test_only_leads_the_relay_made_are_merged(
    deliverer: ApiDeliverer, state: Any, sandbox: SandboxServer
) -> None:
    _create_direct(sandbox, "cy", "Cy, imported by someone else")
    deliverer.deliver(
        "customer:cy", [_event("identify", 1, userId="cy", traits={"email": "c@y.test"})], {}
    )
    group = _event("group", 2, userId="cy", groupId="cco", traits={"name": "C Co"})
    deliverer.deliver("customer:cco", [group], {})
    assert sorted(c["external_id"] for c in state()["customers"]) == ["cco", "cy"]


def test_with_null_traits_clear_a_null_removes_the_custom_attribute(
    sandbox: SandboxServer, redis_url: str, state: Any
) -> None:
    deliverer = _deliverer(sandbox, redis_url)
    deliverer.policy = MappingPolicy(null_clears=True)
    deliverer.deliver("customer:n1", [_group("n1", 1, plan="pro", seats=3)], {})
    outcome = deliverer.deliver("customer:n1", [_group("n1", 2, plan=None, seats=3)], {})
    deliverer.close()
    assert [op["op"] for op in outcome.planned_operations] == ["remove_custom_attributes"]
    assert state()["customers"][0]["attributes"]["custom"] == {"seats": 3}


def test_by_default_a_null_leaves_the_attribute_as_it_is(
    deliverer: ApiDeliverer, state: Any
) -> None:
    deliverer.deliver("customer:n2", [_group("n2", 1, plan="pro")], {})
    assert deliverer.deliver("customer:n2", [_group("n2", 2, plan=None)], {}).calls == 0
    assert state()["customers"][0]["attributes"]["custom"] == {"plan": "pro"}


class _DiesAfterCreatingAContact(ChartMogulClient):
    """A worker killed right after ChartMogul created the contact, before anything was saved."""

    def create_contact(self, customer_uuid: str, standard: Any, custom: Any,
                       external_id: str | None) -> dict[str, Any]:  # fmt: skip
        super().create_contact(customer_uuid, standard, custom, external_id)
        raise SystemExit("killed")


def test_a_worker_killed_after_a_contact_create_does_not_create_it_twice(
    sandbox: SandboxServer, redis_url: str, state: Any
) -> None:
    first = _deliverer(sandbox, redis_url)
    first.deliver("customer:kc", [_group("kc", 1, name="Kill Co")], {})  # record: no contacts
    dying = _deliverer(sandbox, redis_url, _DiesAfterCreatingAContact)
    dying.cache, dying.held = first.cache, first.held  # the same relay, another process
    ident = _event(
        "identify", 2, userId="kate", traits={"email": "k@kc.test", "company": {"id": "kc"}}
    )
    with pytest.raises(SystemExit):
        dying.deliver("customer:kc", [ident], {})
    first.deliver("customer:kc", [ident], {})  # the redo after the visibility timeout
    first.close()
    assert [c["external_id"] for c in state()["contacts"]] == ["kate"]
