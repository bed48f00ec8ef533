"""Lossless coercion to an existing attribute type, and country normalisation."""

from __future__ import annotations

from typing import Any

import pytest

from worker.mapping.coerce import coerce
from worker.mapping.countries import country_code
from worker.mapping.model import AttrType, CustomAttribute, Dropped


@pytest.mark.parametrize(
    ("source", "value", "target", "expected"),
    [
        ("Integer", 3, "Decimal", 3.0),
        ("Integer", 3, "String", "3"),
        ("Integer", 1, "Boolean", True),
        ("Integer", 2, "Boolean", None),
        ("Integer", 2**60, "Decimal", None),
        ("Decimal", 4.0, "Integer", 4),
        ("Decimal", 4.5, "Integer", None),
        ("Decimal", 4.5, "String", "4.5"),
        ("String", "42", "Integer", 42),
        ("String", "42.0", "Integer", None),
        ("String", "4.25", "Decimal", 4.25),
        ("String", "abc", "Decimal", None),
        ("String", "TRUE", "Boolean", True),
        ("String", "f", "Boolean", False),
        ("String", "yes", "Boolean", None),
        ("String", "2024-01-02", "Timestamp", "2024-01-02T00:00:00.000Z"),
        ("String", "soon", "Timestamp", None),
        ("Boolean", True, "String", "true"),
        ("Boolean", True, "Integer", 1),
        ("Boolean", True, "Timestamp", None),
        ("Timestamp", "2024-01-02T00:00:00.000Z", "String", "2024-01-02T00:00:00.000Z"),
        ("Timestamp", "2024-01-02T00:00:00.000Z", "Integer", None),
    ],
)
def test_coerce_is_lossless_or_drops(
    source: AttrType, value: Any, target: AttrType, expected: Any
) -> None:
    result = coerce(CustomAttribute("k", source, value), target)
    if expected is None:
        assert isinstance(result, Dropped)
        assert result.field == "k"
        assert target in result.reason
    else:
        assert result == CustomAttribute("k", target, expected)


def test_coerce_to_the_same_type_is_identity() -> None:
    attr = CustomAttribute("k", "String", "x")
    assert coerce(attr, "String") is attr


def test_too_long_for_a_string_is_dropped() -> None:
    attr = CustomAttribute("k", "String", "x" * 300)
    assert isinstance(coerce(CustomAttribute("k", "Timestamp", "x" * 300), "String"), Dropped)
    assert coerce(attr, "String") is attr


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("US", "US"),
        ("us", "US"),
        ("USA", "US"),
        ("United States", "US"),
        ("united states of america", "US"),
        ("Germany", "DE"),
        ("DEU", "DE"),
        ("276", "DE"),
        ("UK", "GB"),
        (" United  Kingdom ", "GB"),
        ("Russia", "RU"),
        ("Atlantis", None),
        ("", None),
        ("x" * 200, None),
    ],
)
def test_country_code(value: str, code: str | None) -> None:
    assert country_code(value) == code
