"""The pure validation rules."""

from __future__ import annotations

import pytest

from sandbox.inputs import contact_custom, customer_changes
from sandbox.paging import BadCursorError, decode_cursor, encode_cursor, per_page
from sandbox.validation import Invalid, coerce, country_code, format_timestamp, parse_timestamp


@pytest.mark.parametrize(
    ("kind", "value", "stored"),
    [
        ("String", 42, "42"),
        ("String", "x" * 255, "x" * 255),
        ("Integer", "12", 12),
        ("Integer", 3.0, 3),
        ("Decimal", "2.5", 2.5),
        ("Decimal", 7, 7),
        ("Timestamp", "2016-01-31 00:00:00 UTC", "2016-01-31T00:00:00.000Z"),
        ("Timestamp", "2016-01-31T02:00:00+02:00", "2016-01-31T00:00:00.000Z"),
        ("Boolean", "t", True),
        ("Boolean", 0, False),
    ],
)
def test_values_are_stored_in_their_types_form(kind: str, value: object, stored: object) -> None:
    assert coerce(kind, "k", value) == stored


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("String", "x" * 256),
        ("String", None),
        ("String", True),
        ("Integer", True),
        ("Integer", 1.5),
        ("Decimal", "NaN"),
        ("Decimal", [1]),
        ("Boolean", "yes"),
        ("Boolean", 2),
        ("Timestamp", "31/01/2016"),
    ],
)
def test_wrong_values_are_invalid(kind: str, value: object) -> None:
    with pytest.raises(Invalid) as caught:
        coerce(kind, "k", value)
    assert "custom.k" in caught.value.errors


def test_country_codes_are_iso_alpha_2() -> None:
    assert country_code("de") == "DE"
    assert country_code("") is None
    for bad in ("XX", "DEU", "Germany", 49):
        with pytest.raises(Invalid):
            country_code(bad)


def test_unset_text_fields_keep_chartmogul_blanks() -> None:
    changes = customer_changes({"name": None, "city": None, "email": "a@b.co"})
    assert changes == {"name": "", "city": None, "email": "a@b.co"}


def test_contact_custom_list_becomes_an_object() -> None:
    assert contact_custom([{"key": "a", "value": 1}, {"key": "b", "value": "x"}]) == {
        "a": 1,
        "b": "x",
    }
    with pytest.raises(Invalid):
        contact_custom([{"key": "bad key", "value": 1}])
    with pytest.raises(Invalid):
        contact_custom([{"key": "a", "value": {"nested": 1}}])


def test_cursors_round_trip_and_garbage_is_refused() -> None:
    assert decode_cursor(encode_cursor(123)) == 123
    assert decode_cursor(None) is None
    for bad in ("%%%", "bm9wZQ==", "Jng="):  # not base64, "nope", "&x"
        with pytest.raises(BadCursorError):
            decode_cursor(bad)


def test_page_size_defaults_and_caps_at_200() -> None:
    assert per_page(None) == 200
    assert per_page("500") == 200
    assert per_page("5") == 5
    with pytest.raises(ValueError):
        per_page("0")


def test_timestamps_render_with_milliseconds_and_z() -> None:
    assert format_timestamp(parse_timestamp("2023-10-29T18:08:50.244875Z")) == (
        "2023-10-29T18:08:50.244Z"
    )
