"""A fast path for `Schema.load` on the event schemas, compiled from the schemas themselves.

marshmallow costs ~30 µs per event, two thirds of the ingest's CPU per batched event
(docs/decisions/ingest-http-stack.md). This reads each schema's declared fields and builds
plain checks with the same parsers, validators and whole-event rules; it answers only when the
event is certainly valid and returns exactly what `load` would (a property test holds it to
that). Anything else, including every invalid event, goes through marshmallow, which stays the
one source of error messages and of the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from ingest.schemas import Identifier, IsoDateTime, parse_datetime, parse_identifier

Loader = Callable[[dict[str, Any]], dict[str, Any] | None]
_Check = Callable[[Any], Any]  # returns the loaded value or raises ValueError


def compile_loader(schema: Schema) -> Loader | None:
    """A loader equivalent to `schema.load` on valid input (None on any doubt); None if the
    schema uses a field or validator this module does not know."""
    checks: list[tuple[str, bool, _Check]] = []
    for name, field in schema.load_fields.items():
        check = _field_check(field)
        if check is None or field.data_key not in (None, name):
            return None
        checks.append((name, field.required, check))
    rules = getattr(schema, "rules", ())

    def load(item: dict[str, Any]) -> dict[str, Any] | None:
        out = dict(item)
        try:
            for name, required, check in checks:
                if name in item:
                    out[name] = check(item[name])
                elif required:
                    return None
            for rule in rules:
                rule(out)
        except (ValueError, ValidationError):
            return None
        return out

    return load


def _field_check(field: fields.Field[Any]) -> _Check | None:
    base: _Check
    if isinstance(field, IsoDateTime):
        base = parse_datetime
    elif isinstance(field, Identifier):
        base = parse_identifier
    elif type(field) is fields.Dict and field.key_field is None and field.value_field is None:
        base = _dict
    elif type(field) is fields.String:
        base = _string
    else:
        return None
    validators: list[_Check] = []
    for validator in field.validators:
        if isinstance(validator, validate.Equal):
            validators.append(_equal(validator.comparable))
        elif isinstance(validator, validate.Length) and validator.equal is None:
            validators.append(_length(validator.min, validator.max))
        else:
            return None
    allow_none = field.allow_none

    def check(value: Any) -> Any:
        if value is None:
            if allow_none:
                return None
            raise ValueError("null")
        loaded = base(value)
        for validator_check in validators:
            validator_check(loaded)
        return loaded

    return check


def _dict(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise ValueError("not a dict")
    return dict(value)


def _string(value: Any) -> str:
    if type(value) is not str:
        raise ValueError("not a string")
    return value


def _equal(expected: Any) -> _Check:
    def check(value: Any) -> Any:
        if value != expected:
            raise ValueError("not equal")
        return value

    return check


def _length(low: int | None, high: int | None) -> _Check:
    def check(value: Any) -> Any:
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            raise ValueError("length")
        return value

    return check
