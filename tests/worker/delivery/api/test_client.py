"""ChartMogulClient against a real local HTTP server: wire format, taxonomy, gate, secrecy."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from cmrelay.errors import (
    DeliveryConfigurationError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from cmrelay.keys import Keys
from cmrelay.lua import Scripts
from cmrelay.metrics_store import counter_field
from cmrelay.settings import Secret, Settings
from tests.doubles.http_recorder import Recorded, RecordingServer, Reply
from worker.delivery.api.client import ChartMogulClient, ExternalIdTakenError, process_client
from worker.delivery.contract import RequestGate
from worker.delivery.limiter import Grant, RedisRequestGate
from worker.mapping.model import CustomAttribute

KEY = "sk_live_TOPSECRET_0123456789"
KEY_B64 = base64.b64encode(f"{KEY}:".encode()).decode()
DS = "ds_11111111-2222-3333-4444-555555555555"


class RecordingGate:
    """A RequestGate that notes when it is held and what it observed."""

    def __init__(self) -> None:
        self.held = False
        self.acquired = 0
        self.observed: list[tuple[int | None, float | None]] = []

    @contextlib.contextmanager
    def acquire(self) -> Iterator[None]:
        self.acquired += 1
        self.held = True
        try:
            yield
        finally:
            self.held = False

    def observe(self, status: int | None, retry_after: float | None) -> None:
        assert self.held, "observe must run while the request's slot is held"
        self.observed.append((status, retry_after))


def make_client(
    srv: RecordingServer, *, timeout: float = 5.0, gate: RequestGate | None = None
) -> ChartMogulClient:
    return ChartMogulClient(
        base_url=srv.url + "/v1",
        api_key=Secret(KEY),
        data_source_uuid=DS,
        timeout=timeout,
        gate=gate,
    )


def customer(external_id: str = "acme", uuid: str = "cus_1") -> dict[str, Any]:
    return {"uuid": uuid, "external_id": external_id, "data_source_uuid": DS, "name": "Acme"}


def test_create_customer_sends_basic_auth_and_typed_custom_attributes(
    server: RecordingServer,
) -> None:
    server.replies.append(Reply(201, customer()))
    client = make_client(server)
    attrs = [CustomAttribute("seats", "Integer", 5), CustomAttribute("pro", "Boolean", True)]
    result = client.create_customer("acme", {"name": "Acme", "country": "DE"}, attrs)
    assert result["uuid"] == "cus_1"
    (req,) = server.requests
    assert (req.method, req.path) == ("POST", "/v1/customers")
    assert req.headers["authorization"] == f"Basic {KEY_B64}"
    assert req.json() == {
        "name": "Acme",
        "country": "DE",
        "data_source_uuid": DS,
        "external_id": "acme",
        "attributes": {
            "custom": [
                {"type": "Integer", "key": "seats", "value": 5, "source": "Segment"},
                {"type": "Boolean", "key": "pro", "value": True, "source": "Segment"},
            ]
        },
    }


def test_find_customer_filters_by_external_id_and_data_source(server: RecordingServer) -> None:
    other = {**customer(), "data_source_uuid": "ds_other", "uuid": "cus_other"}
    server.replies.append(Reply(200, {"entries": [other, customer()], "has_more": False}))
    server.replies.append(Reply(200, {"entries": [], "has_more": False, "cursor": None}))
    client = make_client(server)
    assert client.find_customer("acme") == customer()
    assert client.find_customer("nobody") is None
    first = server.requests[0]
    assert first.path == "/v1/customers"
    assert first.query == {"external_id": ["acme"], "data_source_uuid": [DS]}


def test_422_external_id_exists_is_its_own_error_and_makes_no_lookup(
    server: RecordingServer,
) -> None:
    exists = {
        "errors": {"external_id": "The external ID for this customer already exists in our system."}
    }
    server.replies.append(Reply(422, exists))
    with pytest.raises(ExternalIdTakenError):
        make_client(server).create_customer("acme", {"name": "Acme"}, [])
    assert [r.method for r in server.requests] == ["POST"]  # the deliverer decides what next


def test_an_attribute_type_422_is_not_mistaken_for_a_taken_external_id(
    server: RecordingServer,
) -> None:
    typed = {"errors": {"custom.seats": "Attribute already exists with type Integer."}}
    server.replies.append(Reply(422, typed))
    with pytest.raises(PermanentDeliveryError) as info:
        make_client(server).create_customer("acme", {"name": "Acme"}, [])
    assert not isinstance(info.value, ExternalIdTakenError)


def test_a_lookup_finds_a_customer_that_holds_the_id_after_a_merge(
    server: RecordingServer,
) -> None:
    survivor = {
        **customer(), "uuid": "cus_2", "external_id": "billing-9",
        "external_ids": ["billing-9", "acme"], "data_source_uuids": ["ds_stripe", DS],
    }  # fmt: skip
    server.replies.append(Reply(200, {"entries": [survivor], "has_more": False}))
    found = make_client(server).find_customer("acme")
    assert found is not None and found["uuid"] == "cus_2"


def test_patch_carries_standard_fields_and_existing_custom_keys_in_one_call(
    server: RecordingServer,
) -> None:
    server.replies.append(Reply(200, customer()))
    make_client(server).update_customer("cus_1", {"name": "Acme"}, {"seats": 3})
    (request,) = server.requests
    assert request.method == "PATCH" and request.path == "/v1/customers/cus_1"
    assert request.json() == {"name": "Acme", "attributes": {"custom": {"seats": 3}}}


def test_other_422_is_permanent_with_status_and_body(server: RecordingServer) -> None:
    server.replies.append(Reply(422, {"errors": {"country": "is invalid"}}))
    with pytest.raises(PermanentDeliveryError) as info:
        make_client(server).create_customer("acme", {"country": "XX"}, [])
    assert info.value.status == 422
    assert "is invalid" in info.value.body


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, PermanentDeliveryError),
        (401, DeliveryConfigurationError),
        (402, PermanentDeliveryError),
        (403, DeliveryConfigurationError),
        (404, PermanentDeliveryError),
        (408, RetryableDeliveryError),
        (409, PermanentDeliveryError),
        (422, PermanentDeliveryError),
        (423, RetryableDeliveryError),
        (429, RetryableDeliveryError),
        (500, RetryableDeliveryError),
        (501, PermanentDeliveryError),
        (502, RetryableDeliveryError),
        (503, RetryableDeliveryError),
        (504, RetryableDeliveryError),
        (505, RetryableDeliveryError),  # actions-core retries it too
        (520, RetryableDeliveryError),
        (302, DeliveryConfigurationError),
    ],
)
def test_every_status_class_maps_to_one_error(
    server: RecordingServer, status: int, expected: type[DeliveryError]
) -> None:
    server.replies.append(Reply(status, {"code": status, "message": "x", "param": None}))
    with pytest.raises(DeliveryError) as info:
        make_client(server).update_customer("cus_1", {"name": "n"})
    assert type(info.value) is expected
    assert info.value.status == status


def test_unknown_data_source_is_a_configuration_error(server: RecordingServer) -> None:
    server.replies.append(Reply(404, {"error": "Data source not found"}))
    with pytest.raises(DeliveryConfigurationError, match="CHARTMOGUL_DATA_SOURCE_UUID"):
        make_client(server).ping()
    assert server.requests[0].path == f"/v1/data_sources/{DS}"


def test_retry_after_seconds_is_parsed(server: RecordingServer) -> None:
    server.replies.append(Reply(429, {"code": 429}, headers={"Retry-After": "7"}))
    with pytest.raises(RetryableDeliveryError) as info:
        make_client(server).get_attributes("cus_1")
    assert info.value.retry_after == 7.0


def test_retry_after_http_date_is_parsed(server: RecordingServer) -> None:
    from email.utils import formatdate

    server.replies.append(
        Reply(503, "busy", headers={"Retry-After": formatdate(time.time() + 30, usegmt=True)})
    )
    with pytest.raises(RetryableDeliveryError) as info:
        make_client(server).get_attributes("cus_1")
    assert info.value.retry_after is not None
    assert 25.0 <= info.value.retry_after <= 31.0


def test_timeout_is_retryable_and_bounded(server: RecordingServer) -> None:
    server.replies.append(Reply(200, {}, delay=5.0))
    started = time.monotonic()
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        make_client(server, timeout=0.2).get_attributes("cus_1")
    assert time.monotonic() - started < 2.0


def test_connection_reset_is_retryable(server: RecordingServer) -> None:
    server.replies.append(Reply(reset=True))
    with pytest.raises(RetryableDeliveryError, match="connection failed"):
        make_client(server).get_attributes("cus_1")


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ChartMogulClient(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=Secret(KEY), data_source_uuid=DS
    )
    with pytest.raises(RetryableDeliveryError):
        client.ping()


def test_success_body_that_is_not_json_is_permanent(server: RecordingServer) -> None:
    server.replies.append(Reply(200, "<html>proxy</html>", headers={"content-type": "text/html"}))
    with pytest.raises(PermanentDeliveryError, match="not a JSON object"):
        make_client(server).get_attributes("cus_1")


def test_gate_is_held_around_every_request_and_observes_each_outcome(
    server: RecordingServer,
) -> None:
    gate = RecordingGate()
    held_during: list[bool] = []

    def respond(record: Recorded) -> Reply:
        held_during.append(gate.held)
        script = {
            1: Reply(200, {"custom": {}}),
            2: Reply(429, {}, headers={"Retry-After": "2"}),
            3: Reply(reset=True),
        }
        return script[len(held_during)]

    server.responder = respond
    client = make_client(server, gate=gate)
    client.update_custom_attributes("cus_1", {"a": 1})
    with pytest.raises(RetryableDeliveryError):
        client.update_custom_attributes("cus_1", {"a": 2})
    with pytest.raises(RetryableDeliveryError):
        client.update_custom_attributes("cus_1", {"a": 3})
    assert held_during == [True, True, True]
    assert gate.acquired == 3
    assert gate.observed == [(200, None), (429, 2.0), (None, None)]


def test_operations_use_the_documented_verbs_paths_and_bodies(server: RecordingServer) -> None:
    server.default = Reply(200, {"custom": {}, "uuid": "con_1"})
    client = make_client(server)
    client.add_custom_attributes("cus_1", [CustomAttribute("plan", "String", "pro")])
    client.update_custom_attributes("cus_1", {"plan": "team"})
    client.get_attributes("cus_1")
    client.create_contact("cus_1", {"email": "a@b.co"}, {"role": "admin"}, "u1")
    client.update_contact("con_1", {"title": "CTO"}, {"role": "owner"})
    client.update_customer("cus_../../x", {"name": "n"})
    seen = [(r.method, r.path) for r in server.requests]
    assert seen == [
        ("POST", "/v1/customers/cus_1/attributes/custom"),
        ("PUT", "/v1/customers/cus_1/attributes/custom"),
        ("GET", "/v1/customers/cus_1/attributes"),
        ("POST", "/v1/contacts"),
        ("PATCH", "/v1/contacts/con_1"),
        ("PATCH", "/v1/customers/cus_..%2F..%2Fx"),
    ]
    bodies = [r.json() if r.body else None for r in server.requests]
    assert bodies[0] == {
        "custom": [{"type": "String", "key": "plan", "value": "pro", "source": "Segment"}]
    }
    assert bodies[1] == {"custom": {"plan": "team"}}
    assert bodies[3] == {
        "email": "a@b.co",
        "customer_uuid": "cus_1",
        "data_source_uuid": DS,
        "external_id": "u1",
        "custom": [{"key": "role", "value": "admin"}],
    }
    assert bodies[4] == {"title": "CTO", "custom": [{"key": "role", "value": "owner"}]}


def test_find_contacts_follows_the_cursor(server: RecordingServer) -> None:
    server.replies += [
        Reply(200, {"entries": [{"uuid": "con_1"}], "has_more": True, "cursor": "abc"}),
        Reply(200, {"entries": [{"uuid": "con_2"}], "has_more": False, "cursor": None}),
    ]
    found = make_client(server).find_contacts(customer_uuid="cus_1", email="a@b.co")
    assert [c["uuid"] for c in found] == ["con_1", "con_2"]
    assert server.requests[0].query["customer_uuid"] == ["cus_1"]
    assert server.requests[0].query["email"] == ["a@b.co"]
    assert server.requests[1].query["cursor"] == ["abc"]


def test_the_key_never_appears_in_errors_reprs_or_logs(
    server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    def echo_secret(record: Recorded) -> Reply:
        # A hostile or broken server echoing the credentials back in its error body.
        return Reply(500, f"auth was {record.headers.get('authorization')} key {KEY}")

    server.responder = echo_secret
    client = make_client(server)
    caplog.set_level(logging.DEBUG)
    errors: list[DeliveryError] = []
    for call in (client.ping, lambda: client.find_customer("acme")):
        with pytest.raises(DeliveryError) as info:
            call()
        errors.append(info.value)
    server.responder = None
    server.replies.append(
        Reply(401, {"code": 401, "message": "No valid API key provided", "param": None})
    )
    with pytest.raises(DeliveryConfigurationError) as info:
        client.ping()
    errors.append(info.value)
    texts = [repr(client), str(client)]
    for err in errors:
        texts += [str(err), repr(err), err.body, repr(err.args)]
    texts += [r.getMessage() for r in caplog.records]
    for text in texts:
        assert KEY not in text
        assert KEY_B64 not in text
    assert "***" in errors[0].body


def test_process_client_is_one_per_process() -> None:
    settings = Settings(chartmogul_api_key=Secret(KEY), chartmogul_data_source_uuid=DS)
    first = process_client(settings)
    assert process_client(settings) is first
    assert KEY not in repr(first)


def test_a_json_body_that_is_not_an_object_is_permanent(server: RecordingServer) -> None:
    server.replies.append(Reply(200, [1, 2]))
    with pytest.raises(PermanentDeliveryError, match="not a JSON object"):
        make_client(server).find_customer("acme")


def test_broken_gzip_content_is_retryable(server: RecordingServer) -> None:
    server.replies.append(Reply(200, b"not gzip at all", headers={"content-encoding": "gzip"}))
    with pytest.raises(RetryableDeliveryError, match="could not be decoded"):
        make_client(server).get_attributes("cus_1")


def test_requests_reuse_one_pooled_connection(server: RecordingServer) -> None:
    server.default = Reply(200, {"custom": {}})
    client = make_client(server)
    for _ in range(3):
        client.get_attributes("cus_1")
    assert len({r.client_port for r in server.requests}) == 1


class AgedFirstGrant(RedisRequestGate):
    """The real gate, but its first grant comes back as if its thread had stalled for 1 s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aged: list[str] = []

    def acquire_grant(self) -> Grant:
        grant = super().acquire_grant()
        if self.aged:
            return grant
        self.aged.append(grant.token)
        return dataclasses.replace(grant, asked_at=grant.asked_at - 1.0)


def test_a_request_is_never_sent_on_a_grant_that_aged(
    server: RecordingServer, client: redis.Redis
) -> None:
    keys = Keys(f"stale{uuid.uuid4().hex[:6]}")
    gate = AgedFirstGrant(Scripts(client, keys), rate=1000, max_in_flight=2, slot_ttl=5)
    slots_at_send: list[list[bytes]] = []

    def respond(record: Recorded) -> Reply:
        slots_at_send.append(client.zrange(keys.in_flight, 0, -1))
        return Reply(200, {"custom": {}})

    server.responder = respond
    make_client(server, gate=gate).update_custom_attributes("cus_1", {"a": 1})
    assert len(server.requests) == 1  # sent once, on the fresh grant
    assert gate.aged[0].encode() not in slots_at_send[0] and len(slots_at_send[0]) == 1
    assert client.hget(keys.metrics, counter_field("rate_limit_stale_grants")) == b"1"
    assert client.zcard(keys.in_flight) == 0  # and the fresh grant's slot came back
