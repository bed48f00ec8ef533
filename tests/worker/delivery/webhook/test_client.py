"""Actions payloads checked byte-for-byte against Segment's own test vectors, over real HTTP."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmrelay.errors import (
    DeliveryConfigurationError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from cmrelay.settings import Secret
from tests.doubles.http_recorder import RecordingServer, Reply
from tests.support.strategies import json_values
from worker.delivery.webhook.client import WebhookClient
from worker.delivery.webhook.payloads import (
    Refused,
    actions_payloads,
    build_payload,
    encode_like_segment,
)

HOOK_PATH = "/api/segment/wh_SECRET_abcdef0123"

MINIMAL = {"messageId": "1", "timestamp": "2024-01-01T10:00:00Z", "sentAt": "2024-01-01T10:01:00Z"}


def post(server: RecordingServer, event: dict[str, Any]) -> bytes:
    payload = actions_payloads(event)
    assert payload is not None
    WebhookClient(url=Secret(server.url + HOOK_PATH)).send(payload)
    return server.requests[-1].body


def test_send_customer_vector_is_byte_identical(server: RecordingServer) -> None:
    # The destination's test vector maps no address; the default mapping always resolves
    # `address` to an object, so a group without address traits adds "address":{}.
    event = {
        **MINIMAL,
        "type": "group",
        "groupId": "g1",
        "userId": "u1",
        "traits": {"name": "Soft Tech"},
    }
    assert post(server, event) == (
        b'{"type":"Send Customer","message_id":"1","timestamp":"2024-01-01T10:00:00Z",'
        b'"sent_at":"2024-01-01T10:01:00Z","group_id":"g1","user_id":"u1","name":"Soft Tech",'
        b'"address":{}}'
    )
    req = server.requests[-1]
    assert (req.method, req.path) == ("POST", HOOK_PATH)
    assert req.headers["user-agent"] == "Segment (Actions)"
    assert req.headers["content-type"] == "application/json"


def test_send_contact_vector_with_both_ids_and_a_company(server: RecordingServer) -> None:
    # The vector's mapping has no company; the default one needs traits.company.id.
    event = {**MINIMAL, "type": "identify", "userId": "u1", "anonymousId": "a1",
             "traits": {"company": {"id": "c1"}}}  # fmt: skip
    assert post(server, event) == (
        b'{"type":"Send Contact","message_id":"1","timestamp":"2024-01-01T10:00:00Z",'
        b'"sent_at":"2024-01-01T10:01:00Z","user_id":"u1","anonymous_id":"a1",'
        b'"company":{"id":"c1"}}'
    )


def test_company_without_id_is_refused_by_the_schema(server: RecordingServer) -> None:
    # Upstream `company.id` is required: {"name": ...} fails validation, nothing is posted.
    event = {
        **MINIMAL,
        "type": "identify",
        "userId": "u1",
        "anonymousId": "a1",
        "traits": {"name": "John Doe", "company": {"name": "Soft Tech"}},
    }
    assert build_payload(event) == Refused(
        "Send Contact: company is missing the required field 'id'"
    )


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({**MINIMAL, "type": "identify"}, "no user_id or anonymous_id"),
        ({**MINIMAL, "type": "identify", "userId": "u1"}, "no company id (company: {})"),
        ({**MINIMAL, "type": "identify", "anonymousId": "a1"}, "no company id (company: {})"),
        (
            {**MINIMAL, "type": "identify", "userId": "u1", "traits": {"company": {"id": ""}}},
            "only an id once the empty company goes",
        ),
        ({**MINIMAL, "type": "identify", "userId": "u1", "traits": {"email": ""}}, "empty string"),
        ({**MINIMAL, "type": "group", "groupId": "g1", "traits": {"name": "x"}}, "no user_id"),
        ({**MINIMAL, "type": "group", "userId": "u1", "traits": {"name": "x"}}, "no group_id"),
        ({**MINIMAL, "type": "track", "userId": "u1", "event": "x"}, "not identify/group"),
        ({"type": "identify", "userId": "u1", "traits": {"email": "a@b.co"}}, "no message_id"),
    ],
)
def test_the_actions_validation_rejects(event: dict[str, Any], why: str) -> None:
    assert actions_payloads(event) is None, why


def test_send_contact_all_fields_match_the_snapshot() -> None:
    v = "xd0rHoH^PTr"
    when = "2021-02-01T00:00:00.000Z"
    event = {
        "type": "identify",
        "messageId": v,
        "timestamp": when,
        "sentAt": when,
        "userId": v,
        "anonymousId": v,
        "traits": {
            "email": "vuha@telwozok.in",
            "first_name": v,
            "last_name": v,
            "name": v,
            "title": v,
            "phone": v,
            "linkedIn": "http://cona.ir/tenromco",
            "twitter": v,
            "company": {"id": v, "name": v, "plan": "ignored"},
            "plan": "not mapped by default",
        },
    }
    snapshot = {
        "anonymous_id": v,
        "company": {"id": v, "name": v},
        "email": "vuha@telwozok.in",
        "first_name": v,
        "last_name": v,
        "linked_in": "http://cona.ir/tenromco",
        "message_id": v,
        "name": v,
        "phone": v,
        "sent_at": when,
        "timestamp": when,
        "title": v,
        "twitter": v,
        "type": "Send Contact",
        "user_id": v,
    }
    payload = actions_payloads(event)
    assert payload == snapshot
    assert list(payload) == [
        "type",
        "message_id",
        "timestamp",
        "sent_at",
        "user_id",
        "anonymous_id",
        "email",
        "first_name",
        "last_name",
        "name",
        "title",
        "phone",
        "linked_in",
        "twitter",
        "company",
    ]


def test_send_customer_all_fields_match_the_snapshot() -> None:
    v = "nX10Ilka9K6F"
    when = "2021-02-01T00:00:00.000Z"
    event = {
        "type": "group",
        "messageId": v,
        "timestamp": when,
        "sentAt": when,
        "userId": v,
        "groupId": v,
        "traits": {
            "name": v,
            "description": v,
            "email": "fiwhaebi@jemtu.ki",
            "website": v,
            "createdAt": when,
            "address": {"street": v, "city": v, "state": v, "postalCode": v, "country": v},
            "industry": "not mapped by default",
        },
    }
    snapshot = {
        "address": {"city": v, "country": v, "postal_code": v, "state": v, "street": v},
        "created_at": when,
        "description": v,
        "email": "fiwhaebi@jemtu.ki",
        "group_id": v,
        "message_id": v,
        "name": v,
        "sent_at": when,
        "timestamp": when,
        "type": "Send Customer",
        "user_id": v,
        "website": v,
    }
    payload = actions_payloads(event)
    assert payload == snapshot
    assert list(payload["address"]) == ["street", "city", "state", "postal_code", "country"]


def test_values_are_coerced_and_emptied_like_segment() -> None:
    event = {
        **MINIMAL,
        "type": "identify",
        "userId": 42,
        "traits": {"phone": 5551234, "title": None, "email": "", "company": {"id": 7}},
    }
    assert actions_payloads(event) == {
        "type": "Send Contact",
        **{"message_id": "1", "timestamp": MINIMAL["timestamp"]},
        "sent_at": MINIMAL["sentAt"],
        "user_id": "42",
        "phone": "5551234",
        "company": {"id": "7"},
    }


def test_json_text_is_what_json_stringify_writes() -> None:
    body = encode_like_segment(
        {"a": "é/\u2028\ud800", "n": [1.0, 0.5, 1e21, 1e-7, 2.5e-5, True, None]}
    )
    assert body == '{"a":"é/\u2028\\ud800","n":[1,0.5,1e+21,1e-7,0.000025,true,null]}'.encode(
        "utf-8", "surrogatepass"
    )


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(429, "slow down", headers={"Retry-After": "3"}), RetryableDeliveryError),
        (Reply(500, "oops"), RetryableDeliveryError),
        (Reply(501, "no"), PermanentDeliveryError),
        (Reply(400, "bad"), PermanentDeliveryError),
        (Reply(403, "Credentials are invalid"), DeliveryConfigurationError),
        (Reply(reset=True), RetryableDeliveryError),
        (Reply(200, {}, delay=5.0), RetryableDeliveryError),
    ],
)
def test_send_uses_the_shared_taxonomy_and_hides_the_url(
    server: RecordingServer,
    caplog: pytest.LogCaptureFixture,
    reply: Reply,
    expected: type[DeliveryError],
) -> None:
    caplog.set_level(logging.DEBUG)
    reply.body = reply.body if reply.status != 400 else f"bad url {HOOK_PATH}"
    server.replies.append(reply)
    client = WebhookClient(url=Secret(server.url + HOOK_PATH), timeout=0.3)
    payload = actions_payloads({**MINIMAL, "type": "group", "groupId": "g", "userId": "u"})
    assert payload is not None
    with pytest.raises(DeliveryError) as info:
        client.send(payload)
    assert type(info.value) is expected
    if reply.status == 429:
        assert isinstance(info.value, RetryableDeliveryError)
        assert info.value.retry_after == 3.0
    texts = [str(info.value), repr(info.value), info.value.body, repr(client)]
    texts += [r.getMessage() for r in caplog.records]
    assert not [t for t in texts if "wh_SECRET" in t]


@settings(max_examples=200)
@given(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["identify", "group", "page"]),
            "messageId": json_values,
            "timestamp": json_values,
            "userId": json_values,
            "groupId": json_values,
            "anonymousId": json_values,
            "traits": json_values,
        }
    )
)
def test_arbitrary_events_never_raise_and_always_encode(event: dict[str, Any]) -> None:
    payload = actions_payloads(event)
    if payload is not None:
        assert payload["type"] in ("Send Contact", "Send Customer")
        assert all(value != "" for value in payload.values())
        assert isinstance(encode_like_segment(payload), bytes)
