"""Property tests: no body, however odd, makes the ingest answer 5xx or escape its error types."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.actions import to_segment_event
from ingest.errors import IngestRejection
from ingest.events import complete, event_type, prepare
from tests.ingest.conftest import SHARED_SECRET, WRITE_KEY

ENDPOINTS = [
    "/v1/identify",
    "/v1/group",
    "/v1/track",
    "/v1/page",
    "/v1/screen",
    "/v1/alias",
    "/v1/batch",
    "/webhook",
    "/chartmogul",
]
FIELDS = [
    "type", "userId", "anonymousId", "groupId", "messageId", "timestamp", "sentAt",
    "originalTimestamp", "traits", "context", "integrations", "writeKey", "batch",
    "user_id", "anonymous_id", "group_id", "message_id", "sent_at", "company", "address",
]  # fmt: skip
TYPES = ["identify", "group", "track", "page", "Send Contact", "Send Customer", "x"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(TYPES)
    | st.datetimes(timezones=st.just(UTC) | st.none()).map(datetime.isoformat)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
events = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)
documents = (
    json_values
    | events
    | st.lists(events, max_size=4)
    | st.builds(
        lambda items, extra: {**extra, "batch": items},
        st.lists(json_values | events, max_size=4),
        events,
    )
)
RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module")
def client(ingest_url: str) -> Iterator[httpx.Client]:
    """One keep-alive client for every example (a new connection each would dominate)."""
    with httpx.Client(base_url=ingest_url, timeout=10) as http:
        yield http
    # The properties only mean something if the bodies reach validation and the queue.
    assert {200, 400} <= set(STATUSES), STATUSES


@settings(max_examples=400, deadline=None)
@given(item=json_values | events)
def test_event_preparation_either_succeeds_or_raises_a_rejection(item: Any) -> None:
    try:
        kind = event_type(item)
        event = prepare(item, kind, RECEIVED)
    except IngestRejection:
        return
    if event is not None:
        orjson.dumps(event)  # queueable: every value is JSON again


@settings(max_examples=300, deadline=None)
@given(payload=json_values | events)
def test_actions_payloads_either_convert_or_raise_a_rejection(payload: Any) -> None:
    try:
        event = complete(to_segment_event(payload), RECEIVED, from_segment=True)
    except IngestRejection:
        return
    assert event["type"] in {"identify", "group"}
    orjson.dumps(event)


def _post(client: httpx.Client, endpoint: str, content: bytes) -> httpx.Response:
    signature = hmac.new(SHARED_SECRET.encode(), content, hashlib.sha1).hexdigest()
    return client.post(
        endpoint,
        content=content,
        params={"writeKey": WRITE_KEY},
        headers={"Content-Type": "application/json", "X-Signature": signature},
        auth=(WRITE_KEY, ""),
    )


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(endpoint=st.sampled_from(ENDPOINTS), document=documents)
def test_arbitrary_json_to_any_endpoint_never_gives_a_5xx(
    client: httpx.Client, endpoint: str, document: Any
) -> None:
    answer = _post(client, endpoint, orjson.dumps(document))
    STATUSES[answer.status_code] += 1
    assert answer.status_code < 500, answer.text
    assert answer.json()["success"] is (answer.status_code == 200)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(endpoint=st.sampled_from(ENDPOINTS), content=st.binary(max_size=200))
def test_arbitrary_bytes_to_any_endpoint_never_give_a_5xx(
    client: httpx.Client, endpoint: str, content: bytes
) -> None:
    answer = _post(client, endpoint, content)
    STATUSES[answer.status_code] += 1
    assert answer.status_code < 500, answer.text
