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
    return ApiDeliverer(client, cache, MappingPolicy(), counting)


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
    # find customer, create customer, create contact (a new customer has no contacts to list)
    assert outcome.calls == 3
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
    # POST tier, PUT seats (Decimal 2.0 coerced to the Integer it already is), PATCH contact
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
