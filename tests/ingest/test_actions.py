from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.actions import is_connection_test, to_segment_event
from ingest.errors import InvalidPayload
from tests.ingest.samples import ACTIONS_CONTACT, ACTIONS_CUSTOMER

CUSTOMER = ACTIONS_CUSTOMER
CONTACT_MINIMAL = ACTIONS_CONTACT


def test_send_customer_becomes_a_group_call() -> None:
    event = to_segment_event(CUSTOMER)
    assert event["type"] == "group"
    assert (event["groupId"], event["userId"], event["messageId"]) == ("g1", "u1", "1")
    assert event["traits"] == {"name": "Soft Tech"}
    assert event["timestamp"] == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)


def test_send_contact_becomes_an_identify_call_with_spec_trait_names() -> None:
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
    assert event["traits"] == {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "linkedIn": "https://linkedin.com/in/ada",
        "email": "ada@example.com",
        "company": {"id": "c1", "name": "Analytical"},
    }


def test_company_without_id_is_dropped_as_the_action_does() -> None:
    event = to_segment_event({**CONTACT_MINIMAL, "name": "J", "company": {"name": "Soft Tech"}})
    assert "company" not in event["traits"]


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
