"""Key sanitising, flattening, timestamp parsing and type inference."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.strategies import json_values
from worker.mapping.attributes import attributes_from
from worker.mapping.model import CustomAttribute, Dropped
from worker.mapping.types import (
    flatten,
    format_timestamp,
    infer,
    parse_timestamp,
    sanitise_key,
)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("total billed", "total_billed"),
        ("plan", "plan"),
        ("utmCampaign", "utmCampaign"),
        ("a.b-c/d", "a_b_c_d"),
        ("  spaced  out  ", "spaced_out"),
        ("größe", "gro_e"),
        ("café", "cafe"),
        ("__x__", "x"),
        ("$$$", ""),
        ("x" * 300, "x" * 255),
    ],
)
def test_sanitise_key(raw: str, key: str) -> None:
    assert sanitise_key(raw) == key


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, CustomAttribute("k", "Boolean", True)),
        (False, CustomAttribute("k", "Boolean", False)),
        (3, CustomAttribute("k", "Integer", 3)),
        (-(2**63), CustomAttribute("k", "Integer", -(2**63))),
        (2.5, CustomAttribute("k", "Decimal", 2.5)),
        ("2024-03-01", CustomAttribute("k", "Timestamp", "2024-03-01T00:00:00.000Z")),
        ("2024-03-01T10:20:30Z", CustomAttribute("k", "Timestamp", "2024-03-01T10:20:30.000Z")),
        (
            "2024-03-01T10:20:30.123456+02:00",
            CustomAttribute("k", "Timestamp", "2024-03-01T08:20:30.123Z"),
        ),
        ("2024-03-01 10:20", CustomAttribute("k", "Timestamp", "2024-03-01T10:20:00.000Z")),
        ("20240301", CustomAttribute("k", "String", "20240301")),  # a zip code, not a date
        ("2024-13-45", CustomAttribute("k", "String", "2024-13-45")),
        ("hello", CustomAttribute("k", "String", "hello")),
        ("42", CustomAttribute("k", "String", "42")),  # no guessing from strings
        (["a", 1], CustomAttribute("k", "String", '["a",1]')),
        ("x" * 255, CustomAttribute("k", "String", "x" * 255)),
        ("x" * 256, Dropped("k", "string longer than 255 characters")),
        (2**63, Dropped("k", "integer out of ChartMogul's 64-bit range")),
        (float("nan"), Dropped("k", "not a finite number")),
        (None, None),
        ("  ", None),
    ],
)
def test_infer(value: Any, expected: object) -> None:
    assert infer("k", value) == expected


def test_timestamps_round_trip_to_chartmogul_form() -> None:
    moment = parse_timestamp("2016-01-31T00:00:00.000Z")
    assert moment is not None
    assert format_timestamp(moment) == "2016-01-31T00:00:00.000Z"
    assert parse_timestamp("2024-01-01T00:00:00.123456789Z") is not None
    assert parse_timestamp("yesterday") is None


def test_flatten_joins_nested_paths_in_order() -> None:
    leaves = list(flatten({"a": 1, "plan": {"name": "pro", "limits": {"seats": 3}}, "b": [1]}))
    assert leaves == [("a", 1), ("plan.name", "pro"), ("plan.limits.seats", 3), ("b", [1])]


def test_too_deep_nesting_is_dropped_not_fatal() -> None:
    deep: dict[str, Any] = {"v": 1}
    for _ in range(8):
        deep = {"n": deep}
    custom, dropped = attributes_from(list(flatten({"deep": deep, "ok": 1})), renames={}, forced={})
    assert list(custom) == ["ok"]
    assert dropped[0].reason.startswith("nested deeper")


def test_colliding_keys_keep_the_first_trait() -> None:
    leaves = [("total billed", 1), ("total_billed", 2), ("$", 3)]
    custom, dropped = attributes_from(leaves, renames={}, forced={})
    assert custom == {"total_billed": CustomAttribute("total_billed", "Integer", 1)}
    assert [d.field for d in dropped] == ["total_billed", "$"]


def test_renames_and_forced_types_apply_by_trait_path() -> None:
    leaves = [("employees", "329"), ("plan.name", "pro"), ("score", "abc")]
    custom, dropped = attributes_from(
        leaves,
        renames={"plan.name": "plan"},
        forced={"employees": "Integer", "score": "Integer"},
    )
    assert custom == {
        "employees": CustomAttribute("employees", "Integer", 329),
        "plan": CustomAttribute("plan", "String", "pro"),
    }
    assert dropped == [Dropped("score", "String value does not fit the existing Integer attribute")]


@given(st.dictionaries(st.text(), json_values, max_size=8))
def test_arbitrary_traits_never_raise_and_keys_are_clean(traits: dict[str, Any]) -> None:
    custom, dropped = attributes_from(list(flatten(traits)), renames={}, forced={})
    for key, attr in custom.items():
        assert key == attr.key
        assert key and sanitise_key(key) == key
        if attr.type == "String":
            assert len(attr.value) <= 255
    assert all(isinstance(d, Dropped) for d in dropped)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001-01-01T00:00:00+05:00", None),  # would overflow before year 1
        ("0999-05-06T07:08:09Z", "0999-05-06T07:08:09.000Z"),
        ("2024-02-30", None),
    ],
)
def test_timestamp_edges(text: str, expected: str | None) -> None:
    moment = parse_timestamp(text)
    assert (format_timestamp(moment) if moment else None) == expected
