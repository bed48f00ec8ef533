from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.errors import InvalidPayload, PayloadTooLarge
from ingest.events import (
    check_size,
    complete,
    event_type,
    iso_ms,
    prepare,
    with_batch_defaults,
)

RECEIVED = datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC)


def test_message_id_is_assigned_when_absent_and_kept_when_given() -> None:
    assigned = prepare({"type": "identify", "userId": "u"}, "identify", RECEIVED)
    kept = prepare({"type": "identify", "userId": "u", "messageId": "m-1"}, "identify", RECEIVED)
    assert assigned is not None and len(assigned["messageId"]) == 36
    assert kept is not None and kept["messageId"] == "m-1"


def test_timestamp_defaults_to_received_time_in_iso_ms() -> None:
    event = prepare({"type": "identify", "userId": "u"}, "identify", RECEIVED)
    assert event is not None
    assert event["timestamp"] == "2026-03-01T12:00:00.500Z" == event["receivedAt"]


def test_client_clock_skew_is_corrected_with_sent_at_as_segment_does() -> None:
    # The client clock runs 1 h fast: it stamped the event 10 s before sending it.
    event = prepare(
        {
            "type": "identify",
            "userId": "u",
            "timestamp": "2026-03-01T13:00:00Z",
            "sentAt": "2026-03-01T13:00:10Z",
        },
        "identify",
        RECEIVED,
    )
    assert event is not None
    assert event["timestamp"] == iso_ms(RECEIVED - timedelta(seconds=10))
    assert event["originalTimestamp"] == "2026-03-01T13:00:00.000Z"


def test_batch_sent_at_corrects_items_without_their_own() -> None:
    sent = datetime(2026, 3, 1, 13, 0, 10, tzinfo=UTC)
    item = {"type": "group", "userId": "u", "groupId": "g", "timestamp": "2026-03-01T13:00:00Z"}
    event = prepare(item, "group", RECEIVED, sent)
    assert event is not None and event["timestamp"] == iso_ms(RECEIVED - timedelta(seconds=10))


def test_timestamp_without_sent_at_is_kept_for_historical_imports() -> None:
    item = {"type": "identify", "userId": "u", "timestamp": "2020-01-01T00:00:00+02:00"}
    event = prepare(item, "identify", RECEIVED)
    assert event is not None and event["timestamp"] == "2019-12-31T22:00:00.000Z"


def test_events_from_segment_keep_their_already_corrected_timestamp() -> None:
    item = {
        "type": "identify",
        "userId": "u",
        "timestamp": "2026-01-01T00:00:00Z",
        "sentAt": "2026-01-01T05:00:00Z",
        "receivedAt": "2026-01-01T00:00:01.000Z",
    }
    event = prepare(item, "identify", RECEIVED, from_segment=True)
    assert event is not None
    assert event["timestamp"] == "2026-01-01T00:00:00.000Z"
    assert event["receivedAt"] == "2026-01-01T00:00:01.000Z"


def test_write_key_never_reaches_the_queue() -> None:
    event = complete({"type": "identify", "userId": "u", "writeKey": "secret"}, RECEIVED)
    assert "writeKey" not in event


def test_numeric_ids_become_strings() -> None:
    event = prepare({"type": "group", "userId": 7, "groupId": 42}, "group", RECEIVED)
    assert event is not None and (event["userId"], event["groupId"]) == ("7", "42")


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"type": "identify"}, "userId"),
        ({"type": "identify", "userId": ""}, "userId"),
        ({"type": "group", "userId": "u"}, "groupId"),
        ({"type": "group", "userId": "u", "groupId": ""}, "groupId"),
        ({"type": "identify", "userId": "u", "messageId": "m" * 101}, "messageId"),
        ({"type": "identify", "userId": "u", "timestamp": "yesterday"}, "timestamp"),
        ({"type": "identify", "userId": "u", "traits": []}, "traits"),
        ({"type": "identify", "userId": True}, "userId"),
    ],
)
def test_invalid_events_name_the_bad_field(item: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPayload) as info:
        prepare(item, str(item["type"]), RECEIVED)
    assert field in info.value.fields


@pytest.mark.parametrize("kind", ["track", "page", "screen", "alias"])
def test_types_the_relay_does_not_use_are_ignored(kind: str) -> None:
    assert prepare({"type": kind}, kind, RECEIVED) is None


def test_unknown_types_are_invalid() -> None:
    with pytest.raises(InvalidPayload, match="unknown event type"):
        prepare({"type": "purchase"}, "purchase", RECEIVED)
    with pytest.raises(InvalidPayload):
        event_type({"no": "type"})
    with pytest.raises(InvalidPayload):
        event_type([1, 2])


def test_batch_context_and_integrations_merge_into_items_and_items_win() -> None:
    item = {"type": "identify", "context": {"ip": "item"}}
    merged = with_batch_defaults(
        item, {"context": {"ip": "batch", "locale": "fr"}, "integrations": {"All": False}}
    )
    assert merged["context"] == {"ip": "item", "locale": "fr"}
    assert merged["integrations"] == {"All": False}
    assert item == {"type": "identify", "context": {"ip": "item"}}  # the input is not changed


def test_events_over_32_kb_are_too_large() -> None:
    check_size({"traits": {"x": "a" * 30_000}})
    with pytest.raises(PayloadTooLarge):
        check_size({"traits": {"x": "a" * 33_000}})
