"""Plans as operations: blind, and diffed against ChartMogul's current state."""

from __future__ import annotations

from worker.delivery.api.record import planned
from worker.mapping import MappingPolicy, merge_events, plan_event
from worker.mapping.model import ContactFields, CustomAttribute, CustomerFields, EventPlan
from worker.mapping.operations import diff_operations, plan_operations, same_value

PLAN = EventPlan(
    CustomerFields(
        "g1",
        {"name": "Initech", "country": "US"},
        {
            "plan": CustomAttribute("plan", "String", "pro"),
            "seats": CustomAttribute("seats", "Integer", 5),
            "since": CustomAttribute("since", "Timestamp", "2024-01-01T00:00:00.000Z"),
        },
    ),
    ContactFields(
        "u1",
        {"email": "p@x.co", "title": "CTO"},
        {"logins": CustomAttribute("logins", "Integer", 3)},
    ),
)

CUSTOMER = {
    "uuid": "cus_1",
    "external_id": "g1",
    "name": "Initech",
    "country": "DE",
    "attributes": {"custom": {"seats": 5.0, "since": "2024-01-01T00:00:00Z"}},
}


def test_blind_operations_list_everything() -> None:
    ops = plan_operations(PLAN, "g1")
    assert [op["op"] for op in ops] == [
        "upsert_customer",
        "set_custom_attributes",
        "upsert_contact",
    ]
    assert ops[2]["custom"] == {"logins": 3}


def test_a_new_customer_is_created_with_its_contact() -> None:
    ops = diff_operations(PLAN, "g1", None, [])
    assert [op["op"] for op in ops] == ["create_customer", "create_contact"]
    assert ops[0]["attributes"][0] == {"key": "plan", "type": "String", "value": "pro"}


def test_only_changes_are_listed() -> None:
    contacts = [
        {
            "uuid": "con_9",
            "external_id": None,
            "email": "p@x.co",
            "title": "CTO",
            "custom": {"logins": 3},
        }
    ]
    ops = diff_operations(PLAN, "g1", CUSTOMER, contacts)
    assert ops == [
        {
            "op": "update_customer",
            "uuid": "cus_1",
            "changes": {"country": {"from": "DE", "to": "US"}},
        },
        {
            "op": "add_custom_attributes",
            "uuid": "cus_1",
            "attributes": [{"key": "plan", "type": "String", "value": "pro"}],
        },
    ]


def test_contact_found_by_external_id_gets_an_update() -> None:
    contacts = [
        {"uuid": "con_1", "external_id": "u1", "email": "old@x.co", "title": "CTO", "custom": {}}
    ]
    ops = diff_operations(EventPlan(None, PLAN.contact), "g1", CUSTOMER, contacts)
    assert ops == [
        {
            "op": "update_contact",
            "uuid": "con_1",
            "changes": {
                "email": {"from": "old@x.co", "to": "p@x.co"},
                "custom.logins": {"from": None, "to": 3},
            },
        }
    ]


def test_same_value_understands_numbers_and_timestamps() -> None:
    assert same_value(5.0, 5)
    assert same_value("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z")
    assert not same_value(True, 1)
    assert not same_value("a", "b")


def test_the_dlq_plan_and_cmrelay_map_speak_one_vocabulary() -> None:
    event = {
        "type": "identify", "userId": "u1", "messageId": "m1",
        "timestamp": "2026-01-01T00:00:00Z",
        "traits": {"email": "a@x.test", "plan": "pro", "company": {"id": "acme", "seats": 3}},
    }  # fmt: skip
    policy = MappingPolicy()
    from_map = plan_operations(plan_event(event, "acme", policy), "acme")
    from_dlq = planned(merge_events("acme", [event], {}, policy))
    assert from_dlq == from_map
    assert [op["op"] for op in from_dlq] == [
        "upsert_customer",
        "set_custom_attributes",
        "upsert_contact",
    ]
