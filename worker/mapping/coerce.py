"""Fit an attribute to the type its key already has in ChartMogul, losslessly or not at all."""

from __future__ import annotations

import json
import math
import re

from worker.mapping.model import AttrType, CustomAttribute, Dropped
from worker.mapping.types import MAX_STRING, format_timestamp, parse_timestamp

_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# The spellings ChartMogul accepts for Boolean attributes.
_TRUE = frozenset({"true", "t", "1"})
_FALSE = frozenset({"false", "f", "0"})
_EXACT_FLOAT_INT = 2**53  # beyond this an int does not survive the trip through a float


def coerce(attr: CustomAttribute, existing_type: AttrType) -> CustomAttribute | Dropped:
    """`attr` converted to `existing_type` when no information is lost, else Dropped with why."""
    if attr.type == existing_type:
        return attr
    value = _convert(attr, existing_type)
    if value is _LOSSY:
        return Dropped(
            attr.key, f"{attr.type} value does not fit the existing {existing_type} attribute"
        )
    return CustomAttribute(attr.key, existing_type, value)


class _Lossy:
    pass


_LOSSY = _Lossy()


def _convert(attr: CustomAttribute, target: AttrType) -> object:  # noqa: PLR0911 (a decision table: one return per row)
    value, source = attr.value, attr.type
    if target == "String":
        text = _as_text(attr)
        return text if len(text) <= MAX_STRING else _LOSSY
    if target == "Decimal":
        if source == "Integer" and abs(value) <= _EXACT_FLOAT_INT:
            return float(value)
        if source == "String" and _DECIMAL.fullmatch(value.strip()):
            number = float(value)
            return number if math.isfinite(number) else _LOSSY
        return _LOSSY
    if target == "Integer":
        if source == "Decimal" and value.is_integer() and abs(value) <= _EXACT_FLOAT_INT:
            return int(value)
        if source == "String" and _INTEGER.fullmatch(value.strip()):
            return int(value)
        if source == "Boolean":
            return int(value)
        return _LOSSY
    if target == "Boolean":
        if source in ("Integer", "Decimal") and value in (0, 1):
            return bool(value)
        if source == "String" and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        return _LOSSY
    if target == "Timestamp" and source == "String":
        moment = parse_timestamp(value)
        return format_timestamp(moment) if moment else _LOSSY
    return _LOSSY


def _as_text(attr: CustomAttribute) -> str:
    if attr.type in {"String", "Timestamp"}:
        return str(attr.value)
    return json.dumps(attr.value)  # true/false, 3, 2.5: the JSON spelling, as sent
