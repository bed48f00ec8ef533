"""Custom attributes from trait values: key sanitising, flattening and type inference (pure)."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from worker.mapping.model import CustomAttribute, Dropped

MAX_STRING = 255  # ChartMogul rejects longer String values
MAX_KEY = 255  # undocumented upstream; long keys are surely mistakes, keep them bounded
MAX_DEPTH = 5  # nested trait objects deeper than this are almost certainly blobs, not traits
# ChartMogul Integer attributes are 64-bit; beyond that a value cannot be stored exactly.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_NOT_KEY_CHAR = re.compile(r"[^A-Za-z0-9_]+")


def sanitise_key(raw: str) -> str:
    """A trait name in ChartMogul's key alphabet: `"total billed"` -> `total_billed`."""
    decomposed = unicodedata.normalize("NFKD", raw)
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_KEY_CHAR.sub("_", ascii_only).strip("_")[:MAX_KEY]


def parse_timestamp(value: str) -> datetime | None:
    """An aware UTC datetime for an ISO-8601 date or date-time string, else None."""
    text = value.strip()
    if not _ISO.fullmatch(text):
        return None
    text = text.replace(",", ".")
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    # fromisoformat takes at most 6 fractional digits; nanoseconds are cut, not rounded.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)  # Segment timestamps are UTC
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # impossible dates; offsets past year 1 or 9999
        return None


def format_timestamp(moment: datetime) -> str:
    """The form ChartMogul returns (`2016-01-31T00:00:00.000Z`), so values compare as equal."""
    return iso_utc(moment)[:23] + "Z"


def iso_utc(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ`, zero-padded (strftime does not pad years below 1000)."""
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond:06d}Z"
    )


def infer(  # noqa: PLR0911 (one return per inference rule)
    key: str, value: Any, trait: str | None = None
) -> CustomAttribute | Dropped | None:
    """The typed attribute for one scalar trait value; None for an empty value (left unset)."""
    label = trait or key
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return CustomAttribute(key, "Boolean", value)
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            return Dropped(label, "integer out of ChartMogul's 64-bit range")
        return CustomAttribute(key, "Integer", value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return Dropped(label, "not a finite number")
        return CustomAttribute(key, "Decimal", value)
    if isinstance(value, str):
        moment = parse_timestamp(value)
        if moment is not None:
            return CustomAttribute(key, "Timestamp", format_timestamp(moment))
        return as_string(key, value, label)
    if isinstance(value, list | tuple):
        try:
            text = json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            return Dropped(label, "list with values that are not JSON")
        return as_string(key, text, label)
    return Dropped(label, f"unsupported value type {type(value).__name__}")


def as_string(key: str, text: str, label: str) -> CustomAttribute | Dropped:
    """A String attribute, or Dropped when it exceeds ChartMogul's 255 characters."""
    if len(text) > MAX_STRING:
        return Dropped(label, f"string longer than {MAX_STRING} characters")
    return CustomAttribute(key, "String", text)


def flatten(
    traits: Mapping[str, Any], prefix: str = "", depth: int = 0
) -> Iterator[tuple[str, Any]]:
    """(dotted path, scalar or list) for every leaf of nested trait objects, in trait order."""
    for name, value in traits.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping):
            if depth >= MAX_DEPTH:
                yield path, TooDeep()
            else:
                yield from flatten(value, f"{path}.", depth + 1)
        else:
            yield path, value


class TooDeep:
    """Marks a subtree left out because it nests deeper than MAX_DEPTH."""
