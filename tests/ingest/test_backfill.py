"""Reading history files, without Redis: records, items, the ingest's own checks, positions."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ingest.backfill import (
    MAX_RECORD_BYTES,
    Item,
    Position,
    content_id,
    history_files,
    items,
    open_history,
    to_event,
)
from ingest.errors import IngestRejection
from ingest.events import prepare
from tests.support.history import write_history

T = "2024-03-01T10:00:00.000Z"
BEGIN = Position()


def _line(**event: object) -> bytes:
    return orjson.dumps({"timestamp": T, **event}) + b"\n"


def _all(data: bytes, start: Position = BEGIN) -> list[Item]:
    return list(items(io.BytesIO(data[start.offset :]), start))


def test_one_event_a_line_with_bad_lines_named_by_line_and_reason() -> None:
    data = (
        _line(type="identify", userId="u1", messageId="m1")
        + b"{oops\n\n"
        + _line(type="group", userId="u1", messageId="m2")  # no groupId
        + _line(type="track", userId="u1", event="x")
    )
    got = _all(data)
    assert [(i.outcome, i.where) for i in got] == [
        ("event", "1"), ("rejected", "2"), ("rejected", "4"), ("ignored", "5"),
    ]  # fmt: skip
    assert got[1].reason.startswith("not valid JSON")
    assert "groupId" in got[2].reason


def test_the_rejection_reason_is_the_ingests_own() -> None:
    item = {"type": "identify", "traits": {}, "timestamp": T}
    with pytest.raises(IngestRejection) as ingest_says:
        prepare(dict(item), "identify", datetime.now(UTC))
    with pytest.raises(IngestRejection) as backfill_says:
        to_event(item, {}, None)
    assert backfill_says.value.fields == ingest_says.value.fields != {}


def test_arrays_and_batch_bodies_expand_with_the_batch_defaults() -> None:
    body = {"batch": [{"type": "identify", "userId": "u1", "timestamp": T},
                      {"type": "identify", "userId": "u2", "timestamp": T,
                       "context": {"ip": "1.2.3.4"}}],
            "context": {"library": {"name": "analytics-python"}}, "writeKey": "secret"}  # fmt: skip
    array = [{"type": "group", "userId": "u", "groupId": "g", "timestamp": T}]
    data = orjson.dumps(body) + b"\n" + orjson.dumps(array) + b"\n"
    got = _all(data)
    assert [(i.outcome, i.where) for i in got] == [
        ("event", "1 item 0"), ("event", "1 item 1"), ("event", "2 item 0"),
    ]  # fmt: skip
    first, second = got[0].event, got[1].event
    assert first is not None and second is not None
    assert first["context"] == {"library": {"name": "analytics-python"}}
    assert second["context"] == {"library": {"name": "analytics-python"}, "ip": "1.2.3.4"}
    assert "writeKey" not in first


def test_a_pretty_printed_document_is_one_record() -> None:
    doc = b'[\n  {"type": "identify", "userId": "u1", "timestamp": "' + T.encode() + b'"},\n'
    doc += b'  {"type": "group", "userId": "u1", "groupId": "g1", "timestamp": "2024-01-01"}\n]\n'
    got = _all(doc)
    assert [i.kind for i in got] == ["identify", "group"]
    assert got[0].after == Position(0, 1, 1)  # resume inside the document, after item 0
    resumed = _all(doc, got[0].after)
    assert [i.kind for i in resumed] == ["group"]


def test_resuming_from_any_position_reads_exactly_the_rest() -> None:
    body = orjson.dumps({"batch": [{"type": "identify", "userId": f"u{n}", "timestamp": T}
                                   for n in range(3)]}) + b"\n"  # fmt: skip
    data = _line(type="identify", userId="a") + body + _line(type="identify", userId="z")
    whole = _all(data)
    users = [i.event["userId"] for i in whole if i.event]
    for index, item in enumerate(whole):
        rest = _all(data, item.after)
        assert [i.event["userId"] for i in rest if i.event] == users[index + 1 :]


def test_an_event_without_messageid_gets_one_from_its_content() -> None:
    item = {"type": "identify", "userId": "u1", "traits": {"a": 1, "b": 2}, "timestamp": T}
    reordered = {"timestamp": T, "traits": {"b": 2, "a": 1}, "userId": "u1", "type": "identify"}
    _, first = to_event(dict(item), {}, None)
    _, again = to_event(reordered, {}, None)
    _, other = to_event({**item, "userId": "u2"}, {}, None)
    assert first is not None and again is not None and other is not None
    assert first["messageId"] == again["messageId"] == content_id(item)
    assert other["messageId"] != first["messageId"]
    _, given = to_event({**item, "messageId": "seg-1"}, {}, None)
    assert given is not None and given["messageId"] == "seg-1"


def test_history_keeps_its_own_time_and_needs_one() -> None:
    _, event = to_event({"type": "identify", "userId": "u", "timestamp": "2020-05-05T00:00:00Z",
                         "sentAt": "2020-05-05T00:10:00Z"}, {}, None)  # fmt: skip
    assert event is not None and event["timestamp"] == "2020-05-05T00:00:00.000Z"  # no skew fix
    got = _all(orjson.dumps({"type": "identify", "userId": "u"}) + b"\n")
    assert got[0].outcome == "rejected" and "timestamp" in got[0].reason


def test_a_runaway_line_is_one_rejection_and_reading_goes_on() -> None:
    data = b"[" + b" " * (MAX_RECORD_BYTES + 10) + b"]\n" + _line(type="identify", userId="u")
    got = _all(data)
    assert [(i.outcome, i.where) for i in got] == [("rejected", "1"), ("event", "2")]
    assert "longer than" in got[0].reason


def test_gzip_is_known_by_its_magic_bytes_and_positions_count_decompressed(
    tmp_path: Path,
) -> None:
    data = _line(type="identify", userId="u1") + _line(type="identify", userId="u2")
    hidden = tmp_path / "history.json"  # no .gz in the name
    hidden.write_bytes(gzip.compress(data))
    with open_history(hidden) as stream:
        got = list(items(stream))
    assert [i.event["userId"] for i in got if i.event] == ["u1", "u2"]
    with open_history(hidden, got[0].after.offset) as stream:
        rest = list(items(stream, got[0].after))
    assert [i.event["userId"] for i in rest if i.event] == ["u2"]


def test_directories_are_walked_in_file_name_order(tmp_path: Path) -> None:
    history = write_history(tmp_path / "h", files=3, events_per_file=5)
    (tmp_path / "h" / ".hidden").write_text("x")
    late = tmp_path / "h" / "sub" / "2024-01-09.ndjson"
    late.parent.mkdir()
    late.write_text("")
    assert history_files([tmp_path / "h"]) == [*history.files, late]


def test_the_history_helper_writes_what_it_says(tmp_path: Path) -> None:
    history = write_history(tmp_path, files=2, events_per_file=40)
    found: list[Item] = []
    for path in history.files:
        with open_history(path) as stream:
            found.extend(items(stream))
    assert sum(i.outcome == "event" for i in found) == history.valid
    assert sum(i.outcome == "ignored" for i in found) == history.ignored
    assert sum(i.outcome == "rejected" for i in found) == len(history.bad) > 0
    assert history.files[1].read_bytes()[:2] == b"\x1f\x8b"
