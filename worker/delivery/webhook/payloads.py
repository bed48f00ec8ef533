"""The "ChartMogul (Actions)" payloads, built and encoded the way Segment's destination does (pure).

`actions_payloads` applies the two actions' default field mappings and their validation;
`encode_like_segment` writes the JSON text byte for byte as JSON.stringify would.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_MISSING = object()

# Field order is the order of the action's `fields` definition, which is the order of the keys
# Segment's mapping-kit resolves and JSON.stringify writes. For Send Customer we put group_id
# before user_id, as in the destination's own "processes valid input" test vector.
_CONTACT_FIELDS: tuple[tuple[str, str], ...] = (
    ("email", "email"),
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("name", "name"),
    ("title", "title"),
    ("phone", "phone"),
    ("linked_in", "linkedIn"),
    ("twitter", "twitter"),
)
_CUSTOMER_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "name"),
    ("description", "description"),
    ("email", "email"),
    ("website", "website"),
    ("created_at", "createdAt"),
)
_ADDRESS_FIELDS: tuple[tuple[str, str], ...] = (
    ("street", "street"),
    ("city", "city"),
    ("state", "state"),
    ("postal_code", "postalCode"),
    ("country", "country"),
)


def _js_string(value: Any) -> Any:
    """A mapped value as Segment's schema validation leaves it, or _MISSING when it is dropped.

    Absent and null values are omitted, scalars are coerced to strings the way JavaScript's
    String() does (Ajv type coercion), and objects/arrays for a string field are left out.
    """
    if value is None or value is _MISSING:
        return _MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _MISSING if not math.isfinite(value) else _js_float_text(value)
    if isinstance(value, str):
        return value
    return _MISSING


def _datetime_field(value: Any) -> Any:
    """Datetime fields accept an ISO string or a number (epoch) unchanged."""
    if value is None or isinstance(value, bool):
        return _MISSING
    if isinstance(value, float) and not math.isfinite(value):
        return _MISSING
    if isinstance(value, str | int | float):
        return value
    return _MISSING


def _get(source: Any, key: str) -> Any:
    return source.get(key, _MISSING) if isinstance(source, Mapping) else _MISSING


def _put(payload: dict[str, Any], key: str, value: Any, *, root: bool = True) -> None:
    # removeEmptyValues: undefined keys go everywhere, empty strings only at the root.
    if value is _MISSING or (root and value == ""):
        return
    payload[key] = value


def _common(event: Mapping[str, Any], action: str) -> dict[str, Any]:
    payload: dict[str, Any] = {"type": action}
    _put(payload, "message_id", _js_string(_get(event, "messageId")))
    _put(payload, "timestamp", _datetime_field(_get(event, "timestamp")))
    # sentAt is required by the action; events that reached us without one (webhook sources)
    # fall back to the time Segment (or our ingest) received them.
    sent_at = _get(event, "sentAt")
    if sent_at in (_MISSING, None, ""):
        sent_at = _get(event, "receivedAt")
    if sent_at in (_MISSING, None, ""):
        sent_at = _get(event, "timestamp")
    _put(payload, "sent_at", _datetime_field(sent_at))
    return payload


def _has_required(payload: Mapping[str, Any], *keys: str) -> bool:
    return all(key in payload for key in ("message_id", "timestamp", "sent_at", *keys))


def actions_payloads(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The "Send Contact" (identify) or "Send Customer" (group) payload, or None if rejected."""
    if not isinstance(event, Mapping):
        return None
    if event.get("type") == "identify":
        return _send_contact(event, _get(event, "traits"))
    if event.get("type") == "group":
        return _send_customer(event, _get(event, "traits"))
    return None


def _send_contact(event: Mapping[str, Any], traits: Any) -> dict[str, Any] | None:
    payload = _common(event, "Send Contact")
    _put(payload, "user_id", _js_string(_get(event, "userId")))
    _put(payload, "anonymous_id", _js_string(_get(event, "anonymousId")))
    for field, trait in _CONTACT_FIELDS:
        _put(payload, field, _js_string(_get(traits, trait)))
    company = _get(traits, "company")
    company_id = _js_string(_get(company, "id"))
    if company_id is not _MISSING and company_id != "":  # the action deletes id-less companies
        mapped = {"id": company_id}
        _put(mapped, "name", _js_string(_get(company, "name")), root=False)
        payload["company"] = mapped
    if "user_id" not in payload and "anonymous_id" not in payload:
        return None  # "The user_id and/or anonymous_id must be present."
    if len(payload) <= 5 or not _has_required(payload):
        return None  # "The event contains no information of interest to Chartmogul."
    return payload


def _send_customer(event: Mapping[str, Any], traits: Any) -> dict[str, Any] | None:
    payload = _common(event, "Send Customer")
    _put(payload, "group_id", _js_string(_get(event, "groupId")))
    _put(payload, "user_id", _js_string(_get(event, "userId")))
    for field, trait in _CUSTOMER_FIELDS:
        convert = _datetime_field if field == "created_at" else _js_string
        _put(payload, field, convert(_get(traits, trait)))
    address = _get(traits, "address")
    mapped_address: dict[str, Any] = {}
    for field, trait in _ADDRESS_FIELDS:
        _put(mapped_address, field, _js_string(_get(address, trait)), root=False)
    # mapping-kit would keep an all-absent address as {}; absent values are omitted instead,
    # which is what Segment's own test vector shows for a group without address traits.
    if mapped_address:
        payload["address"] = mapped_address
    if not _has_required(payload, "group_id", "user_id"):
        return None  # missing the required field 'user_id' / 'group_id'
    return payload


def _js_float_text(value: float) -> str:
    """Number#toString: the shortest round-trip digits laid out by JavaScript's rules."""
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    if not isinstance(exponent, int):  # NaN/Infinity never get here; be safe anyway
        return "null"
    all_digits = "".join(map(str, digit_tuple))
    point = len(all_digits) + exponent  # value = 0.<digits> * 10**point
    digits = all_digits.rstrip("0") or "0"
    k, n, minus = len(digits), point, "-" if sign else ""
    if k <= n <= 21:
        return minus + digits + "0" * (n - k)
    if 0 < n <= 21:
        return minus + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return minus + "0." + "0" * (-n) + digits
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{minus}{head}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _js_text(value: Any) -> str:
    if isinstance(value, Mapping):
        items = (f"{_js_text(str(k))}:{_js_text(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_js_text(v) for v in value) + "]"
    if isinstance(value, float) and math.isfinite(value):
        return _js_float_text(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        # JSON.stringify escapes lone surrogates (well-formed stringify, ES2019).
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return json.dumps(value if not isinstance(value, float) else None)


def encode_like_segment(payload: Mapping[str, Any]) -> bytes:
    """JSON.stringify(payload) as UTF-8 bytes: compact, keys in order, non-ASCII kept."""
    return _js_text(payload).encode("utf-8")
