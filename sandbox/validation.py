"""Validation rules of the ChartMogul API, as pure functions that raise `Invalid` (a 422)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pycountry

DUPLICATE_EXTERNAL_ID = "The external ID for this customer already exists in our system."
ATTRIBUTE_TYPES = ("String", "Integer", "Decimal", "Timestamp", "Boolean")
LEAD_STATUSES = ("New Lead", "Working Lead", "Qualified Lead", "Unqualified Lead")
MAX_STRING = 255
NOT_CREATED = "Attribute must first be created using the POST call."
DEFAULT_SOURCE = "API"  # a custom attribute's `source` when none is given [MCP]
# ChartMogul: "alphanumeric characters and underscores". The length cap is our own choice.
_KEY = re.compile(r"^[A-Za-z0-9_]{1,255}$")
_TRUE = frozenset({"TRUE", "true", "t", "1"})
_FALSE = frozenset({"FALSE", "false", "f", "0"})


class Invalid(Exception):  # noqa: N818 - named after the 422 it becomes
    """A request ChartMogul would answer with 422 {"errors": {...}}."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


def check_key(key: object) -> str:
    """A custom attribute key, or Invalid."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise Invalid({"custom": f"Key {key!r} may only contain letters, digits and underscores."})
    return key


def parse_timestamp(value: object) -> datetime:
    """An ISO 8601 timestamp (also "YYYY-MM-DD HH:MM:SS UTC"), as an aware datetime."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("not a timestamp")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError):
            raise ValueError("timestamp out of range") from None
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """ChartMogul's rendering of a timestamp: 2016-01-31T00:00:00.000Z."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def coerce(kind: str, key: str, value: object) -> object:
    """The stored form of a custom attribute value of type `kind`, or Invalid."""
    try:
        return _COERCERS[kind](value)
    except (ValueError, TypeError, OverflowError):
        shown = repr(value)[:80]  # errors echo the value, but not a megabyte of it
        raise Invalid({f"custom.{key}": f"Value {shown} is not a valid {kind}."}) from None


def _string(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError("not a string")
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_STRING:
        raise ValueError("too long")
    return text


def _integer(value: object) -> int:
    if isinstance(value, bool):
        raise TypeError("bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    raise ValueError("not an integer")


def _decimal(value: object) -> float | int:
    if isinstance(value, bool):
        raise TypeError("bool")
    if isinstance(value, int | float):
        number: float | int = value
    elif isinstance(value, str):
        number = float(value)
    else:
        raise TypeError("not a number")
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value) if isinstance(value, int | str) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean")


def _timestamp(value: object) -> str:
    return format_timestamp(parse_timestamp(value))


_COERCERS = {
    "String": _string,
    "Integer": _integer,
    "Decimal": _decimal,
    "Timestamp": _timestamp,
    "Boolean": _boolean,
}


class Attr(NamedTuple):
    """One validated custom attribute: key, type, stored value and where it came from."""

    key: str
    kind: str
    value: object
    source: str = DEFAULT_SOURCE


def attribute_source(raw: object, key: str) -> str:
    """A custom attribute's `source` (absent or null: "API"), or Invalid."""
    if raw is None:
        return DEFAULT_SOURCE
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_STRING:
        raise Invalid({f"custom.{key}": "Source must be a non-empty string of 255 characters."})
    return raw


def typed_attributes(items: object, known: Mapping[str, str]) -> list[Attr]:
    """The attributes of a POST-style list; a type must match the known one."""
    if not isinstance(items, list) or not items:
        raise Invalid({"custom": "Must be a non-empty list of {type, key, value} objects."})
    out = []
    for item in items:
        if not isinstance(item, dict) or "key" not in item or "value" not in item:
            raise Invalid({"custom": "Each attribute needs a key, a type and a value."})
        key = check_key(item["key"])
        kind = item.get("type")
        if kind not in ATTRIBUTE_TYPES:
            raise Invalid({f"custom.{key}": f"Type must be one of {', '.join(ATTRIBUTE_TYPES)}."})
        if known.get(key, kind) != kind:
            raise Invalid({f"custom.{key}": f"Attribute already exists with type {known[key]}."})
        source = attribute_source(item.get("source"), key)
        out.append(Attr(key, kind, coerce(kind, key, item["value"]), source))
    return out


def inferred_type(key: str, value: object) -> str:
    """The type a new key gets from a bare JSON value (PATCH, where no type is sent)."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Decimal"
    if isinstance(value, str):
        return "String"
    raise Invalid({f"custom.{key}": "Value must be a string, number or boolean."})


def untyped_attributes(
    values: object, known: Mapping[str, str], *, infer: bool = False
) -> list[Attr]:
    """The attributes of a PUT-style object (key: value or key: {value, source}). Each key must
    already exist, unless `infer`: then a new key takes the type of its value."""
    if not isinstance(values, dict) or not values:
        raise Invalid({"custom": "Must be a non-empty object of key: value."})
    out = []
    for raw_key, raw in values.items():
        key = check_key(raw_key)
        wrapped = isinstance(raw, dict) and "value" in raw
        value = raw["value"] if wrapped else raw
        source = attribute_source(raw.get("source") if wrapped else None, key)
        kind = known.get(key)
        if kind is None:
            if not infer:
                raise Invalid({f"custom.{key}": NOT_CREATED})
            kind = inferred_type(key, value)
        out.append(Attr(key, kind, coerce(kind, key, value), source))
    return out


def country_code(value: object) -> str | None:
    """An ISO 3166 alpha-2 code (case-insensitive), or Invalid."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) == 2:
        found = pycountry.countries.get(alpha_2=value.upper())
        if found is not None:
            return str(found.alpha_2)
    raise Invalid({"country": "Country must be an ISO 3166-1 alpha-2 code."})


def optional_text(body: Mapping[str, Any], field: str) -> str | None:
    """A string field that may be absent or null, or Invalid."""
    value = body.get(field)
    if value is None or isinstance(value, str):
        return value
    raise Invalid({field: "Must be a string."})


def required_text(body: Mapping[str, Any], field: str, message: str) -> str:
    """A non-empty string field, or Invalid with `message`."""
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise Invalid({field: message})
    return value


def optional_date(body: Mapping[str, Any], field: str) -> str | None:
    """A timestamp field rendered the ChartMogul way, or Invalid."""
    value = body.get(field)
    if value is None or value == "":
        return None
    try:
        return format_timestamp(parse_timestamp(value))
    except (ValueError, TypeError, OverflowError):
        raise Invalid({field: "Must be an ISO 8601 timestamp."}) from None


def lead_status(value: object) -> str:
    """A lead status a client may set, or Invalid."""
    if value not in LEAD_STATUSES:
        raise Invalid({"status": f"Status must be one of {', '.join(LEAD_STATUSES)}."})
    return str(value)


def tag_list(body: Mapping[str, Any]) -> list[str]:
    """The `tags` list of a tags request, or Invalid."""
    tags = body.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise Invalid({"tags": "Must be a list of non-empty strings."})
    return tags
