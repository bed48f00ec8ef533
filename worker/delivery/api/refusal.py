"""Reading a ChartMogul refusal of custom attributes: which keys it names, and their real types.

ChartMogul answers a bad custom attribute with 422 {"errors": {...}}; the exact wording is not
documented, so this reads it loosely: a field such as "custom.<key>" or a message naming a key we
sent, and a type word ("already exists with type Integer", "is not a valid Decimal").
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from typing import Any, cast

from cmrelay.errors import PermanentDeliveryError
from worker.mapping import AttrType
from worker.mapping.model import ATTR_TYPES

_TYPE_WORD = re.compile(r"\b(" + "|".join(ATTR_TYPES) + r")\b")
# Messages echo the refused value; a quoted value must not pass for the key's type.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_FIELD_KEY = re.compile(r"custom(?:\.|\[)([A-Za-z0-9_]+)")
_STRING_PAIR = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_ABOUT = ("custom", "attribute")
REFUSAL_STATUSES = frozenset({400, 422})


def attribute_refusal(
    exc: PermanentDeliveryError, sent: Collection[str]
) -> dict[str, AttrType | None] | None:
    """The sent keys a refusal names (with the type ChartMogul says each holds, when it says).

    None when the refusal is not about custom attributes at all; {} when it is but names none.
    """
    if exc.status not in REFUSAL_STATUSES:
        return None
    named: dict[str, AttrType | None] = {}
    about = False
    for field, message in _messages(exc.body):
        key = _key_in_field(field, sent)
        if key is None and _names_no_other_field(field):
            key = _key_in_message(message, sent)
        if key is None:
            about = about or any(word in f"{field} {message}".lower() for word in _ABOUT)
            continue
        about = True
        named[key] = _type_in(message) or named.get(key)
    return named if about else None


def _messages(body: str) -> Iterator[tuple[str, str]]:
    """(field, message) pairs of an error body, JSON or (when cut short) scraped from text."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        yield from _STRING_PAIR.findall(body)
        return
    if not isinstance(parsed, dict):
        return
    errors = parsed.get("errors")
    if isinstance(errors, dict):
        for field, value in errors.items():
            for message in value if isinstance(value, list) else [value]:
                yield str(field), str(message)
    elif isinstance(errors, list):
        yield from (("", str(message)) for message in errors)
    for text in ("message", "error"):
        if isinstance(parsed.get(text), str):
            yield str(parsed.get("param") or ""), parsed[text]


def _key_in_field(field: str, sent: Collection[str]) -> str | None:
    found = _FIELD_KEY.search(field)
    return found.group(1) if found and found.group(1) in sent else None


def _names_no_other_field(field: str) -> bool:
    # {"country": "..."} is about a standard field even if the text happens to hold a key name.
    return field in ("", "base") or any(word in field.lower() for word in _ABOUT)


def _key_in_message(message: str, sent: Collection[str]) -> str | None:
    for key in sorted(sent, key=len, reverse=True):  # the longest name first: "a_b" before "a"
        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(key)}(?![A-Za-z0-9_])", message):
            return key
    return None


def _type_in(message: str) -> AttrType | None:
    words = _TYPE_WORD.findall(_QUOTED.sub("", message))
    return cast(AttrType, words[-1]) if words else None
