"""payloads.py and formats.py: Segment's mapping, coercion and validation, pure.

The expected values were checked against actions-core's own pipeline (Ajv 8 with
`coerceTypes: "array"`, ajv-formats 2.1.1 and dayjs) run on the same events.
"""

from __future__ import annotations

from typing import Any

import pytest

from worker.delivery.webhook.formats import is_date_like, is_email, is_uri, is_uri_reference
from worker.delivery.webhook.js import js_to_number, stringify
from worker.delivery.webhook.payloads import Refused, build_payload

WHEN = {
    "messageId": "m1",
    "timestamp": "2024-01-01T10:00:00.000Z",
    "sentAt": "2024-01-01T10:00:01.000Z",
}
COMPANY = {"company": {"id": "c1"}}


def contact(**traits: Any) -> dict[str, Any]:
    return {**WHEN, "type": "identify", "userId": "u1", "traits": {**COMPANY, **traits}}


def customer(**traits: Any) -> dict[str, Any]:
    return {**WHEN, "type": "group", "userId": "u1", "groupId": "g1", "traits": traits}


def sent(event: dict[str, Any]) -> dict[str, Any]:
    built = build_payload(event)
    assert not isinstance(built, Refused), built
    return built


def refused(event: dict[str, Any]) -> str:
    built = build_payload(event)
    assert isinstance(built, Refused), built
    return built.reason


def test_an_identify_without_a_company_id_is_refused_as_segment_does() -> None:
    # The default mapping resolves `company` to {} and its `id` is required.
    event = {**WHEN, "type": "identify", "userId": "u1", "traits": {"email": "a@b.co"}}
    assert "company is missing the required field 'id'" in refused(event)
    assert "company is missing" in refused({**event, "traits": {"company": {}}})
    assert "company is missing" in refused({**event, "traits": {"company": {"id": None}}})
    assert "company is missing" in refused({**event, "traits": {"company": "Acme"}})


def test_an_empty_company_id_passes_the_schema_and_perform_drops_the_company() -> None:
    payload = sent(contact(email="a@b.co", company={"id": "", "name": "X"}))
    assert "company" not in payload and payload["email"] == "a@b.co"


def test_first_and_last_name_come_from_the_snake_case_traits() -> None:
    payload = sent(contact(first_name="Ada", last_name="L", firstName="ignored"))
    assert (payload["first_name"], payload["last_name"]) == ("Ada", "L")
    assert "firstName" not in stringify(payload).decode()


def test_anonymous_identifies_are_sent() -> None:
    event = {**WHEN, "type": "identify", "anonymousId": "anon-1", "traits": COMPANY}
    assert sent(event)["anonymous_id"] == "anon-1"


@pytest.mark.parametrize("missing", ["sentAt", "timestamp", "messageId"])
def test_a_missing_common_field_refuses_the_event(missing: str) -> None:
    event = contact(email="a@b.co")
    del event[missing]
    field = {"sentAt": "sent_at", "timestamp": "timestamp", "messageId": "message_id"}[missing]
    assert f"missing the required field '{field}'" in refused(event)


def test_there_is_no_fallback_for_a_missing_sent_at() -> None:
    event = {**contact(email="a@b.co"), "receivedAt": "2024-01-01T10:00:02.000Z"}
    del event["sentAt"]
    assert "sent_at" in refused(event)


@pytest.mark.parametrize(
    ("traits", "reason"),
    [
        ({"email": "not-an-email"}, "email is not a valid email"),
        ({"email": "a@b"}, "email is not a valid email"),  # one DNS label is not enough
        ({"email": True}, "email is not a valid email"),  # coerced to "true" first
        ({"linkedIn": "linkedin.com/in/ada"}, "linked_in is not a valid uri"),
        ({"linkedIn": "https://bücher.de/x"}, "linked_in is not a valid uri"),
        ({"title": ["a", "b"]}, "title must be a string"),
        ({"title": {"x": 1}}, "title must be a string"),
        ({"title": [["x"]]}, "title must be a string"),
        ({"company": {"id": ["a", "b"]}}, "company.id"),
    ],
)
def test_send_contact_refusals_name_the_field(traits: dict[str, Any], reason: str) -> None:
    got = refused(contact(**traits))
    assert reason.split(".", maxsplit=1)[0] in got, got
    assert "bücher" not in got and "not-an-email" not in got  # reasons never carry values


def test_one_item_arrays_are_their_item() -> None:
    payload = sent(contact(email=["a@b.co"], phone=[5551234], title=[True], company={"id": [7]}))
    assert payload["email"] == "a@b.co"
    assert (payload["phone"], payload["title"], payload["company"]) == (
        "5551234",
        "true",
        {"id": "7"},
    )


def test_one_item_arrays_in_datetime_fields_follow_ajvs_two_type_rule() -> None:
    # type ["string", "number"]: a numeric string item becomes a number, a number item becomes
    # a string (then checked as a date), any other string item is a type error.
    assert sent({**contact(email="a@b.co"), "sentAt": ["1704103200"]})["sent_at"] == 1704103200
    assert sent({**contact(email="a@b.co"), "sentAt": [1704103200]})["sent_at"] == "1704103200"
    assert "sent_at must be a string or a number" in refused(
        {**contact(email="a@b.co"), "sentAt": ["2024-01-01T10:00:00Z"]}
    )
    assert "created_at is not a valid datetime" in refused(customer(createdAt=[1e21]))


def test_numeric_datetimes_pass_unchanged() -> None:
    payload = sent({**contact(email="a@b.co"), "timestamp": 1704103200, "sentAt": 1704103200123})
    assert (payload["timestamp"], payload["sent_at"]) == (1704103200, 1704103200123)


def test_nested_empty_strings_stay_and_root_ones_go() -> None:
    payload = sent(customer(name="", address={"city": "", "street": None}))
    assert "name" not in payload
    assert payload["address"] == {"city": ""}


def test_a_group_without_address_traits_sends_an_empty_address() -> None:
    assert sent(customer(name="Acme"))["address"] == {}


def test_send_customer_needs_user_and_group() -> None:
    event = customer(name="Acme")
    assert "'user_id'" in refused({k: v for k, v in event.items() if k != "userId"})
    assert "'group_id'" in refused({k: v for k, v in event.items() if k != "groupId"})


@pytest.mark.parametrize(
    ("website", "ok"),
    [("acme.test", True), ("https://acme.test/a?b#c", True), ('/a"b', True), ("a b", False),
     ("https://acme.test/<x>", False), ("http://[::1]/", True), ("http://[::1::2]/", False)],
)  # fmt: skip
def test_website_is_a_uri_reference(website: str, ok: bool) -> None:
    built = build_payload(customer(website=website))
    assert isinstance(built, Refused) is not ok
    assert is_uri_reference(website) is ok


@pytest.mark.parametrize(
    ("text", "email", "uri"),
    [
        ("a@b.co", True, False),
        ("a.b+c@d-e.fg", True, False),
        ("a..b@c.de", False, False),
        ("a@-b.co", False, False),
        ("K@k.kk\n", False, False),  # no trailing newline, unlike Python's `$`
        ("mailto:a@b.co", False, True),
        ("http://host", False, True),
        ("a:", False, False),
        ("http://[1:2:3:4:5:6:7:8]/", False, True),
        ("http://[::ffff:1.2.3.4]/", False, True),
        ("http://[1:2:3:4:5:6:7:8:9]/", False, False),
        ("http://[v1.x]/", False, True),
        ("http://a%zz", False, False),
    ],
)
def test_email_and_uri_formats(text: str, email: bool, uri: bool) -> None:
    assert (is_email(text), is_uri(text)) == (email, uri)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2024-01-01T10:00:00.000Z", True),
        ("2024-01-01T10:00:00+01:00", True),
        ("2024-01-01", True),
        ("2024-01-01 10:00:00 UTC", True),
        ("Mon, 01 Jan 2024 10:00:00 +0000", True),
        ("January 5, 2024 10:00 AM", True),
        ("01/15/2024", True),
        ("1704103200", True),
        ("1704103200000", True),  # read as seconds, still a valid date
        ("2024-01-01T25:00:00Z", False),
        ("2024-13-01T00:00:00Z", False),
        ("13/01/2024", False),
        ("tomorrow", False),
        ("12:00", False),
        ("1e21", False),
        ("NaN", False),
        ("", False),
    ],
)
def test_date_like(text: str, ok: bool) -> None:
    assert is_date_like(text) is ok


def test_js_to_number() -> None:
    assert [js_to_number(t) for t in (" 2024", "1.5", "0x10", "", "x", "Infinity")] == [
        2024, 1.5, 16, 0, None, float("inf"),
    ]  # fmt: skip
