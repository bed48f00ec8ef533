"""The fast path must agree with marshmallow: same output when it answers, silence otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, validate

from ingest.fastload import compile_loader
from ingest.schemas import SCHEMAS
from tests.ingest.test_properties import events, json_values


@settings(max_examples=600, deadline=None)
@given(kind=st.sampled_from(sorted(SCHEMAS)), item=events | json_values)
def test_fast_loader_returns_what_marshmallow_returns_or_steps_aside(kind: str, item: Any) -> None:
    if not isinstance(item, dict):
        return
    item = {**item, "type": kind} if len(item) % 2 else item  # half of them well-typed
    fast = compile_loader(SCHEMAS[kind])
    assert fast is not None
    fast_result = fast(item)
    try:
        expected = SCHEMAS[kind].load(item)
    except ValidationError:
        assert fast_result is None
        return
    assert fast_result is None or fast_result == expected


def test_a_typical_valid_event_takes_the_fast_path() -> None:
    fast = compile_loader(SCHEMAS["group"])
    assert fast is not None
    item = {"type": "group", "userId": 7, "groupId": "g", "timestamp": "2026-01-01T00:00:00Z"}
    assert fast(item) == SCHEMAS["group"].load(item)
    assert fast(item) is not None


@pytest.mark.parametrize(
    "field",
    [
        fields.Integer(),
        fields.String(validate=validate.Regexp("x")),
        fields.String(data_key="other"),
    ],
)
def test_schemas_with_unknown_fields_or_validators_are_not_compiled(
    field: fields.Field[Any],
) -> None:
    schema = Schema.from_dict({"x": field})()
    assert compile_loader(schema) is None


ids = st.text(min_size=1, max_size=20) | st.integers(min_value=0, max_value=2**40)
dates = st.datetimes(timezones=st.none() | st.just(None)).map(lambda d: d.isoformat())
valid_events = st.fixed_dictionaries(
    {"userId": ids, "groupId": ids},
    optional={
        "anonymousId": ids | st.none(),
        "messageId": st.text(min_size=1, max_size=100),
        "timestamp": dates | st.none(),
        "sentAt": dates,
        "traits": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
        "context": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
        "extra": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(SCHEMAS)), item=valid_events)
def test_valid_events_take_the_fast_path_with_the_same_result(kind: str, item: Any) -> None:
    item = {**item, "type": kind}
    fast = compile_loader(SCHEMAS[kind])
    assert fast is not None
    assert fast(item) == SCHEMAS[kind].load(item)
