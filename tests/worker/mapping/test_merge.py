"""merge_events: coalescing with last-writer-wins clocks per attribute."""

from __future__ import annotations

from typing import Any

from worker.mapping.merge import EPOCH, clock_time, merge_events
from worker.mapping.model import CustomAttribute
from worker.mapping.policy import MappingPolicy

POLICY = MappingPolicy()


def group(ts: str, mid: str, **traits: Any) -> dict[str, Any]:
    return {
        "type": "group",
        "groupId": "g1",
        "userId": "u1",
        "messageId": mid,
        "timestamp": ts,
        "traits": traits,
    }


def identify(ts: str, mid: str, user: str = "u1", **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "messageId": mid, "timestamp": ts, "traits": traits}


def test_newest_event_wins_per_attribute_regardless_of_arrival_order() -> None:
    events = [
        group("2024-01-01T10:00:02Z", "m2", name="New", plan="team"),
        group("2024-01-01T10:00:01Z", "m1", name="Old", seats=3),
    ]
    delta = merge_events("g1", events, {}, POLICY)
    assert delta.standard["name"] == "New"
    assert delta.custom == {
        "plan": CustomAttribute("plan", "String", "team"),
        "seats": CustomAttribute("seats", "Integer", 3),
    }
    assert delta.message_ids == ("m1", "m2")
    assert delta.clock_updates["std:name"] == "2024-01-01T10:00:02.000000Z"
    assert delta.clock_updates["custom:seats"] == "2024-01-01T10:00:01.000000Z"


def test_a_late_old_event_never_overwrites_a_newer_stored_value() -> None:
    clock = {"std:name": "2024-01-01T12:00:00.000000Z", "custom:plan": "2024-01-01T09:00:00Z"}
    delta = merge_events(
        "g1", [group("2024-01-01T10:00:00Z", "m", name="Stale", plan="pro")], clock, POLICY
    )
    assert "name" not in delta.standard
    assert "std:name" not in delta.clock_updates
    assert delta.custom["plan"].value == "pro"
    assert delta.clock_updates["custom:plan"] == "2024-01-01T10:00:00.000000Z"


def test_same_timestamp_redelivery_applies_again() -> None:
    clock = {"std:name": "2024-01-01T10:00:00.000000Z"}
    delta = merge_events("g1", [group("2024-01-01T10:00:00Z", "m", name="Same")], clock, POLICY)
    assert delta.standard["name"] == "Same"


def test_contacts_merge_by_user_with_their_own_clock_paths() -> None:
    events = [
        identify("2024-01-01T10:00:01Z", "a", email="a1@x.co", title="Dev"),
        identify("2024-01-01T10:00:00Z", "b", email="a0@x.co", logins=2),
        identify("2024-01-01T10:00:03Z", "c", user="u2", email="b@x.co"),
    ]
    clock = {"contact:u1:std:title": "2024-02-01T00:00:00Z"}
    delta = merge_events("g1", events, clock, POLICY)
    assert set(delta.contacts) == {"u1", "u2"}
    assert delta.contacts["u1"].standard == {"email": "a1@x.co"}
    assert delta.contacts["u1"].custom["logins"].value == 2
    assert delta.clock_updates["contact:u1:std:email"] == "2024-01-01T10:00:01.000000Z"
    assert "contact:u1:std:title" not in delta.clock_updates
    assert delta.contacts["u2"].standard == {"email": "b@x.co"}


def test_equal_timestamps_keep_arrival_order() -> None:
    ts = "2024-01-01T10:00:00Z"
    delta = merge_events("g1", [group(ts, "1", name="A"), group(ts, "2", name="B")], {}, POLICY)
    assert delta.standard["name"] == "B"


def test_dropped_values_are_collected_and_empty_delta_detected() -> None:
    delta = merge_events("g1", [group("2024-01-01T10:00:00Z", "m", country="Atlantis")], {}, POLICY)
    assert [d.field for d in delta.dropped] == ["country"]
    assert delta.is_empty


def test_clock_time_is_canonical_and_sortable() -> None:
    assert clock_time("2024-01-01T12:00:00+02:00") == "2024-01-01T10:00:00.000000Z"
    assert clock_time("garbage") == EPOCH
    assert clock_time(None) == EPOCH
    assert clock_time("2024-01-01T10:00:00.5Z") > clock_time("2024-01-01T10:00:00Z")
