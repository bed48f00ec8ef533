"""Custom attributes whose type ChartMogul already fixed, through the engine, the real sandbox
over HTTP and the session's real Redis: a refused attribute costs only itself."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from cmrelay.errors import DeliveryConfigurationError, RetryableDeliveryError
from cmrelay.keys import Keys
from cmrelay.settings import Secret, Settings
from cmrelay.status import engine_status
from sandbox.runner import SandboxServer
from tests.support.events import envelope
from tests.support.sandbox_relay import API_KEY as KEY
from tests.support.sandbox_relay import DATA_SOURCE as DS
from worker.delivery.api.cache import RelayCache
from worker.delivery.api.client import ChartMogulClient
from worker.delivery.api.deliverer import ApiDeliverer
from worker.delivery.api.held_store import HeldStore
from worker.delivery.counting import CountingGate
from worker.mapping import MappingPolicy
from worker.pipeline.accept import accept_batch
from worker.pipeline.deliver import deliver_entity
from worker.pipeline.engine import Engine


def _settings(sandbox: SandboxServer, redis_url: str, data_source: str = DS) -> Settings:
    return dataclasses.replace(
        Settings(), redis_url=redis_url, key_prefix=f"a{uuid.uuid4().hex[:8]}",
        chartmogul_api_key=Secret(KEY), chartmogul_api_base=sandbox.base_url,
        chartmogul_data_source_uuid=data_source, coalesce_window=0.0,
        pause_probe_interval=0.2,
    )  # fmt: skip


def _api_deliverer(settings: Settings, client_cls: type = ChartMogulClient) -> ApiDeliverer:
    counting = CountingGate(None)
    client = client_cls.from_settings(settings, counting)
    cache = RelayCache(redis.Redis.from_url(settings.redis_url), Keys(settings.key_prefix))
    held = HeldStore(cache.redis, cache.keys, settings.confirmed_state_ttl)
    return ApiDeliverer(client, cache, MappingPolicy(), counting, held)


@pytest.fixture
def engine(sandbox: SandboxServer, redis_url: str, state: Any) -> Iterator[Engine]:
    """An in-process engine whose deliverer is the real API deliverer on the sandbox."""
    eng = Engine.from_settings(_settings(sandbox, redis_url))
    eng._deliverer = _api_deliverer(eng.settings)
    yield eng
    eng.close()


def _define(sandbox: SandboxServer, owner: str, *attrs: tuple[str, str, Any]) -> None:
    """Fix keys' types account-wide the way another integration would: on another customer."""
    custom = [{"type": kind, "key": key, "value": value} for key, kind, value in attrs]
    httpx.post(
        f"{sandbox.base_url}/customers", auth=(KEY, ""), timeout=5,
        json={"data_source_uuid": DS, "external_id": owner, "attributes": {"custom": custom}},
    ).raise_for_status()  # fmt: skip


def _deliver(engine: Engine, entity: str, *events: bytes) -> str:
    engine.redis.lpush(engine.keys.ingest_queue, *events)
    accept_batch(engine)
    return deliver_entity(engine, entity)


def _group(cid: str, **traits: Any) -> bytes:
    return envelope("group", group_id=cid, traits=traits)


def _customer(state: Any, external_id: str) -> dict[str, Any]:
    [found] = [c for c in state()["customers"] if c["external_id"] == external_id]
    return dict(found)


def _dropped(engine: Engine) -> int:
    return engine_status(engine.redis, engine.keys).counters.get("dropped_attributes", 0)


def test_a_key_of_another_type_is_dropped_alone_on_an_existing_customer(
    engine: Engine, sandbox: SandboxServer, state: Any, caplog: pytest.LogCaptureFixture
) -> None:
    assert _deliver(engine, "customer:acme", _group("acme", name="Acme")) == "delivered"
    _define(sandbox, "elsewhere", ("seats", "Integer", 3))
    caplog.set_level("INFO")
    calls_before = engine_status(engine.redis, engine.keys).counters["calls"]
    event = _group("acme", name="Acme Inc", seats="many", plan="pro", region="eu")
    outcome = _deliver(engine, "customer:acme", event)
    assert outcome == "delivered"
    # PATCH the name, POST the three (422: seats is an Integer), POST the other two.
    assert engine_status(engine.redis, engine.keys).counters["calls"] - calls_before == 3
    customer = _customer(state, "acme")
    assert customer["name"] == "Acme Inc"
    assert customer["attributes"]["custom"] == {"plan": "pro", "region": "eu"}
    status = engine_status(engine.redis, engine.keys)
    assert status.dead_letters == 0 and status.counters["dropped_attributes"] == 1
    [line] = [r.getMessage() for r in caplog.records if "left out seats" in r.getMessage()]
    assert "Integer" in line and "many" not in line  # the key and why, never the value


def test_lossless_values_arrive_in_the_type_chartmogul_holds(
    engine: Engine, sandbox: SandboxServer, state: Any
) -> None:
    assert _deliver(engine, "customer:beta", _group("beta", name="Beta")) == "delivered"
    _define(sandbox, "elsewhere", ("score", "Decimal", 1.5), ("code", "String", "x"))
    assert _deliver(engine, "customer:beta", _group("beta", score=3, code=42)) == "delivered"
    custom = _customer(state, "beta")["attributes"]["custom"]
    assert custom == {"score": 3.0, "code": "42"}
    assert isinstance(custom["score"], float) and _dropped(engine) == 0
    # What the refusals taught is kept: the next event is fitted before it is sent.
    types = RelayCache(engine.redis, engine.keys).types()
    assert types["score"] == "Decimal" and types["code"] == "String"


def test_a_new_customer_is_created_with_everything_but_the_conflicting_attribute(
    engine: Engine, sandbox: SandboxServer, state: Any
) -> None:
    _define(sandbox, "elsewhere", ("seats", "Integer", 3), ("score", "Decimal", 1.5))
    group = _group("newco", name="NewCo", address={"country": "France"},
                   seats="many", score=2, plan="pro")  # fmt: skip
    ident = envelope(user_id="ann", traits={"email": "ann@newco.test", "company": {"id": "newco"}})
    assert _deliver(engine, "customer:newco", group, ident) == "delivered"
    customer = _customer(state, "newco")
    assert (customer["name"], customer["country"]) == ("NewCo", "FR")
    assert customer["attributes"]["custom"] == {"plan": "pro", "score": 2.0}
    assert [c["email"] for c in state()["contacts"]] == ["ann@newco.test"]
    status = engine_status(engine.redis, engine.keys)
    assert status.dead_letters == 0 and status.counters["dropped_attributes"] == 1


class _FailsContactsOnce(ChartMogulClient):
    failed = False

    def create_contact(self, customer_uuid: str, standard: Any, custom: Any,
                       external_id: str | None) -> dict[str, Any]:  # fmt: skip
        if not _FailsContactsOnce.failed:
            _FailsContactsOnce.failed = True
            raise RetryableDeliveryError("contact create timed out")
        return super().create_contact(customer_uuid, standard, custom, external_id)


def test_a_retried_delivery_counts_its_dropped_attributes_once(
    sandbox: SandboxServer, redis_url: str, state: Any
) -> None:
    _define(sandbox, "elsewhere", ("seats", "Integer", 3))
    deliverer = _api_deliverer(_settings(sandbox, redis_url), _FailsContactsOnce)
    events = [
        {"type": "group", "messageId": "m1", "timestamp": "2026-01-01T00:00:01Z",
         "userId": "bob", "groupId": "gamma",
         "traits": {"seats": "lots", "plan": "x", "country": "Atlantis"}},
        {"type": "identify", "messageId": "m2", "timestamp": "2026-01-01T00:00:02Z",
         "userId": "bob", "traits": {"email": "bob@gamma.test", "company": {"id": "gamma"}}},
    ]  # fmt: skip
    counters = deliverer.cache.keys.counters
    with pytest.raises(RetryableDeliveryError):
        deliverer.deliver("customer:gamma", events, {})
    assert deliverer.cache.redis.hget(counters, "dropped_attributes") is None
    deliverer.deliver("customer:gamma", events, {})
    assert int(deliverer.cache.redis.hget(counters, "dropped_attributes") or 0) == 2
    assert _customer(state, "gamma")["attributes"]["custom"] == {"plan": "x"}
    deliverer.close()


def test_an_unknown_data_source_pauses_delivery_instead_of_dead_lettering(
    sandbox: SandboxServer, redis_url: str, state: Any
) -> None:
    engine = Engine.from_settings(_settings(sandbox, redis_url, data_source="ds_missing"))
    deliverer = engine._deliverer = _api_deliverer(engine.settings)
    try:
        assert _deliver(engine, "customer:delta", _group("delta", name="Delta")) == "paused"
        status = engine_status(engine.redis, engine.keys)
        assert status.dead_letters == 0
        assert status.paused and "CHARTMOGUL_DATA_SOURCE_UUID" in status.paused
        assert engine.redis.llen(engine.keys.mailbox("customer:delta")) == 1  # kept, not lost
        with pytest.raises(DeliveryConfigurationError, match="CHARTMOGUL_DATA_SOURCE_UUID"):
            deliverer.probe()  # GET /data_sources/ds_missing answers 404
        # A contact-only change on a customer whose uuid was cached still pauses (POST /contacts).
        deliverer.cache.put("customer", "delta", "cus_cached")
        ident = {"type": "identify", "messageId": "m3", "timestamp": "2026-01-01T00:00:01Z",
                 "userId": "dan", "traits": {"email": "dan@delta.test",
                                             "company": {"id": "delta"}}}  # fmt: skip
        with pytest.raises(DeliveryConfigurationError):
            deliverer.deliver("customer:delta", [ident], {})
    finally:
        engine.close()
    assert state()["customers"] == []
