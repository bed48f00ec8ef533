"""marshmallow schemas of what the ingest accepts (Segment spec) and answers; also feed OpenAPI.

Only the fields the relay relies on are declared; everything else in an event passes through
unchanged (`unknown = INCLUDE`), as Segment keeps unknown fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

MAX_MESSAGE_ID = 100  # Segment asks for unique ids "with fewer than 100 characters".


def parse_datetime(value: Any) -> datetime:
    """An aware UTC datetime from an ISO-8601 string; ValueError otherwise (naive = UTC)."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("Not a valid ISO-8601 date-time string.")
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("Not a valid ISO-8601 date-time string.") from None


def parse_identifier(value: Any) -> str:
    """A userId/anonymousId/groupId as a string (clients may send numbers); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("Must be a string.")
    text = value if isinstance(value, str) else str(value)
    if len(text) > 1024:
        raise ValueError("Longer than 1024 characters.")
    return text


class IsoDateTime(fields.Field[datetime]):
    """An ISO-8601 date-time string; a value without an offset is taken as UTC."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> datetime:
        try:
            return parse_datetime(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class Identifier(fields.Field[str]):
    """A userId/anonymousId/groupId: a string, or a number the clients turn into one."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        try:
            return parse_identifier(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


Rule = Callable[[dict[str, Any]], None]


def needs_a_user(data: dict[str, Any]) -> None:
    """Segment spec: every call carries a userId or an anonymousId."""
    if not data.get("userId") and not data.get("anonymousId"):
        raise ValidationError("userId or anonymousId is required.", "userId")


def needs_a_group(data: dict[str, Any]) -> None:
    """Segment spec: a Group call names its group."""
    if not data.get("groupId"):
        raise ValidationError("groupId must not be empty.", "groupId")


class _EventSchema(Schema):
    """Fields every Segment call shares (spec: common fields)."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True)
    messageId = fields.String(validate=validate.Length(min=1, max=MAX_MESSAGE_ID))
    userId = Identifier(allow_none=True)
    anonymousId = Identifier(allow_none=True)
    timestamp = IsoDateTime(allow_none=True)
    sentAt = IsoDateTime(allow_none=True)
    originalTimestamp = IsoDateTime(allow_none=True)
    context = fields.Dict(allow_none=True)
    integrations = fields.Dict(allow_none=True)

    # Whole-event rules, as plain functions so that ingest/fastload.py applies the same ones.
    rules: ClassVar[tuple[Rule, ...]] = (needs_a_user,)

    @validates_schema
    def _apply_rules(self, data: dict[str, Any], **kwargs: Any) -> None:
        for rule in self.rules:
            rule(data)


class IdentifySchema(_EventSchema):
    """A Segment Identify call."""

    type = fields.String(required=True, validate=validate.Equal("identify"))
    traits = fields.Dict(allow_none=True)


class GroupSchema(_EventSchema):
    """A Segment Group call: needs a groupId."""

    type = fields.String(required=True, validate=validate.Equal("group"))
    groupId = Identifier(required=True)
    traits = fields.Dict(allow_none=True)
    rules = (needs_a_user, needs_a_group)


class BatchSchema(Schema):
    """POST /v1/batch: items, plus context/integrations merged into each (documentation only)."""

    batch = fields.List(fields.Dict(), required=True, validate=validate.Length(max=2500))
    writeKey = fields.String()
    sentAt = IsoDateTime()
    context = fields.Dict()
    integrations = fields.Dict()


class ActionsDateTime(IsoDateTime):
    """An Actions `datetime` field: ISO-8601 text, or epoch seconds / milliseconds as a number
    or numeric text (Segment's fields are typed string | number)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> datetime:
        try:
            return parse_actions_datetime(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


_EPOCH_MS_FROM = 100_000_000_000  # as seconds that is the year 5138: such numbers are ms
_EPOCH_TEXT = re.compile(r"\s*-?[0-9]+(?:\.[0-9]+)?\s*", re.ASCII)


def parse_actions_datetime(value: Any) -> datetime:
    """parse_datetime, plus epoch numbers (seconds, or ms when that is the only sensible
    reading); ValueError otherwise."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric and not (isinstance(value, str) and _EPOCH_TEXT.fullmatch(value)):
        return parse_datetime(value)
    number = float(value)
    seconds = number / 1000 if abs(number) >= _EPOCH_MS_FROM else number
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise ValueError("Not a valid date-time: epoch out of range.") from None


class ActionsContactSchema(Schema):
    """POST /chartmogul, "Send Contact": the flat payload of Segment's ChartMogul (Actions)."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True, validate=validate.Equal("Send Contact"))
    message_id = fields.String(validate=validate.Length(min=1, max=MAX_MESSAGE_ID))
    timestamp = ActionsDateTime(allow_none=True)
    sent_at = ActionsDateTime(allow_none=True)
    user_id = Identifier(allow_none=True)
    anonymous_id = Identifier(allow_none=True)
    company = fields.Dict(allow_none=True)


class ActionsCustomerSchema(Schema):
    """POST /chartmogul, "Send Customer": needs user_id and group_id, as the action does."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True, validate=validate.Equal("Send Customer"))
    message_id = fields.String(validate=validate.Length(min=1, max=MAX_MESSAGE_ID))
    timestamp = ActionsDateTime(allow_none=True)
    sent_at = ActionsDateTime(allow_none=True)
    user_id = Identifier(required=True, validate=validate.Length(min=1))
    group_id = Identifier(required=True, validate=validate.Length(min=1))
    address = fields.Dict(allow_none=True)


class RejectedItemSchema(Schema):
    """One batch item that was not queued, and why."""

    index = fields.Integer(required=True)
    reason = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields")


class SuccessSchema(Schema):
    """200: everything valid is durably queued; rejected items are listed, not queued."""

    success = fields.Boolean(required=True)
    queued = fields.Integer()
    ignored = fields.Integer()
    rejected = fields.List(fields.Nested(RejectedItemSchema))


class ErrorSchema(Schema):
    """4xx/503: what was wrong; `fields` names each bad field."""

    success = fields.Boolean(required=True)
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields")


IDENTIFY = IdentifySchema()
GROUP = GroupSchema()
SCHEMAS: dict[str, Schema] = {"identify": IDENTIFY, "group": GROUP}
IGNORED_TYPES = frozenset({"track", "page", "screen", "alias"})
