from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.actions import CARRIED, is_connection_test, to_segment_event
from ingest.errors import InvalidPayload
from ingest.events import complete
from tests.ingest.samples import ACTIONS_CONTACT, ACTIONS_CUSTOMER
from worker.delivery.webhook import payloads

CUSTOMER = ACTIONS_CUSTOMER
CONTACT_MINIMAL = ACTIONS_CONTACT


def test_send_customer_becomes_a_group_call() -> None:
    event = to_segment_event(CUSTOMER)
    assert event["type"] == "group"
    assert (event["groupId"], event["userId"], event["messageId"]) == ("g1", "u1", "1")
    assert event["traits"] == {"name": "Soft Tech"}
    assert event["timestamp"] == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)


def test_send_contact_becomes_an_identify_with_the_traits_the_action_read() -> None:
    event = to_segment_event(
        {
            **CONTACT_MINIMAL,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "linked_in": "https://linkedin.com/in/ada",
            "email": "ada@example.com",
            "company": {"id": "c1", "name": "Analytical"},
        }
    )
    assert event["type"] == "identify"
    assert (event["userId"], event["anonymousId"]) == ("u1", "a1")
    # The action's defaults read $.traits.first_name / last_name / linkedIn.
    assert event["traits"] == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "linkedIn": "https://linkedin.com/in/ada",
        "email": "ada@example.com",
        "company": {"id": "c1", "name": "Analytical"},
    }


def test_company_without_id_is_dropped_as_the_action_does() -> None:
    event = to_segment_event({**CONTACT_MINIMAL, "name": "J", "company": {"name": "Soft Tech"}})
    assert "company" not in event["traits"]
    assert "company" not in event["context"][CARRIED]


def test_customer_address_uses_spec_names() -> None:
    event = to_segment_event(
        {**CUSTOMER, "address": {"postal_code": "94103", "city": "SF"}, "created_at": "2020"}
    )
    assert event["traits"]["address"] == {"postalCode": "94103", "city": "SF"}
    assert event["traits"]["createdAt"] == "2020"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({k: v for k, v in CUSTOMER.items() if k != "user_id"}, "user_id"),
        ({k: v for k, v in CUSTOMER.items() if k != "group_id"}, "group_id"),
        ({**CONTACT_MINIMAL, "user_id": None, "anonymous_id": None}, "user_id"),
        ({**CUSTOMER, "type": "Send Invoice"}, "type"),
        ({**CUSTOMER, "timestamp": "noon"}, "timestamp"),
        ({**CUSTOMER, "sent_at": True}, "sent_at"),
        ({**CUSTOMER, "sent_at": 1e30}, "sent_at"),
    ],
)
def test_invalid_payloads_name_the_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPayload) as info:
        to_segment_event(payload)
    assert field in info.value.fields


def test_the_destination_connection_test_is_recognised() -> None:
    assert is_connection_test({})
    assert not is_connection_test(CUSTOMER)
    assert not is_connection_test([])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1704103200, datetime(2024, 1, 1, 10, 0, tzinfo=UTC)),
        (1704103200123, datetime(2024, 1, 1, 10, 0, 0, 123000, tzinfo=UTC)),  # milliseconds
        ("1704103200", datetime(2024, 1, 1, 10, 0, tzinfo=UTC)),
        ("2024-01-01T10:00:00Z", datetime(2024, 1, 1, 10, 0, tzinfo=UTC)),
    ],
)
def test_datetime_fields_take_epoch_numbers_as_segments_do(
    value: object, expected: datetime
) -> None:
    event = to_segment_event({**CUSTOMER, "timestamp": value, "sent_at": value})
    assert event["timestamp"] == expected == event["sentAt"]


ROUND_TRIPS: list[dict[str, Any]] = [
    {**CONTACT_MINIMAL, "email": "ada@example.com", "first_name": "Ada", "last_name": "L",
     "name": "Ada L", "title": "CTO", "phone": "+1 555", "linked_in": "https://linkedin.com/in/a",
     "twitter": "@ada", "company": {"id": "c1", "name": "Analytical"}},
    {**CONTACT_MINIMAL, "first_name": "Only"},  # no company: Segment's mapping had none
    {**CONTACT_MINIMAL, "timestamp": 1704103200, "sent_at": "1704103260", "name": "N"},
    {**CUSTOMER, "description": "d", "email": "x@y.co", "website": "y.co",
     "created_at": "2020-01-01T00:00:00.000Z",
     "address": {"street": "1 St", "city": "Oslo", "state": "", "postal_code": "0150",
                 "country": "NO"}},
    CUSTOMER,  # no address: stays without one
]  # fmt: skip


@pytest.mark.parametrize("posted", ROUND_TRIPS)
def test_the_webhook_payload_of_a_posted_one_is_the_posted_one(posted: dict[str, Any]) -> None:
    assert payloads.CARRIED == CARRIED  # one key on both sides of the queue
    event = complete(to_segment_event(dict(posted)), datetime.now(UTC), from_segment=True)
    built = payloads.build_payload(event)
    assert payloads.encode_like_segment(built) == payloads.encode_like_segment(posted)  # type: ignore[arg-type]


def test_an_edited_event_is_built_from_its_traits_not_the_posted_payload() -> None:
    event = complete(to_segment_event({**CUSTOMER, "name": "Old"}), datetime.now(UTC),
                     from_segment=True)  # fmt: skip
    event["groupId"] = "g2"  # e.g. fixed by an operator before a DLQ replay
    built = payloads.build_payload(event)
    assert isinstance(built, dict) and built["group_id"] == "g2" and built["name"] == "Old"
