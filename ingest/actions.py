"""Turn the flat payload of Segment's ChartMogul (Actions) destination back into a Segment call.

"Send Contact" came from an Identify and "Send Customer" from a Group (segment.md §1.3, §1.4);
the reverse mapping restores the trait names the action read (traits.first_name, linkedIn,
createdAt, address.postalCode), so the worker sees one event shape only. The payload as posted
also travels in `context.chartmogul_actions`: webhook mode posts it on unchanged, so the round
trip keeps every field as Segment sent it (worker/delivery/webhook/payloads.py).
"""

from __future__ import annotations

import copy
from typing import Any

from marshmallow import Schema, ValidationError

from ingest.errors import InvalidPayload
from ingest.schemas import ActionsContactSchema, ActionsCustomerSchema

CONTACT = "Send Contact"
CUSTOMER = "Send Customer"
_SCHEMAS: dict[str, Schema] = {CONTACT: ActionsContactSchema(), CUSTOMER: ActionsCustomerSchema()}
# Action field -> the trait its default mapping reads ($.traits.first_name, $.traits.linkedIn).
_CONTACT_TRAITS = {"linked_in": "linkedIn"}
_CUSTOMER_TRAITS = {"created_at": "createdAt"}
_ADDRESS = {"postal_code": "postalCode"}
_COMMON = {"type", "message_id", "timestamp", "sent_at", "user_id", "anonymous_id", "group_id"}
# Where the posted payload travels inside the event (the worker reads the same key).
CARRIED = "chartmogul_actions"


def is_connection_test(payload: Any) -> bool:
    """True for `{}`: the destination's "test connection" POSTs an empty object."""
    return isinstance(payload, dict) and not payload


def to_segment_event(payload: Any) -> dict[str, Any]:
    """An identify (Send Contact) or group (Send Customer) event; InvalidPayload otherwise."""
    if not isinstance(payload, dict):
        raise InvalidPayload("payload must be a JSON object")
    kind = payload.get("type")
    schema = _SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise InvalidPayload(
            "type must be 'Send Contact' or 'Send Customer'", fields={"type": ["Unknown."]}
        )
    try:
        data: dict[str, Any] = schema.load(payload)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise InvalidPayload(f"invalid {kind} payload", fields=messages) from None
    event = _contact(data) if kind == CONTACT else _customer(data)
    carried = copy.deepcopy(payload)
    if (
        kind == CONTACT
        and isinstance(carried.get("company"), dict)
        and not carried["company"].get("id")
    ):
        del carried["company"]  # as for the traits: the action drops a company without an id
    event["context"] = {CARRIED: carried}
    return event


def _contact(data: dict[str, Any]) -> dict[str, Any]:
    if not data.get("user_id") and not data.get("anonymous_id"):
        # The action refuses these too: "The user_id and/or anonymous_id must be present."
        raise InvalidPayload(
            "user_id or anonymous_id is required", fields={"user_id": ["Missing data."]}
        )
    traits = _traits(data, _CONTACT_TRAITS)
    company = traits.get("company")
    if isinstance(company, dict) and not company.get("id"):
        del traits["company"]  # the action drops a company without an id
    return _event("identify", data, traits)


def _customer(data: dict[str, Any]) -> dict[str, Any]:
    traits = _traits(data, _CUSTOMER_TRAITS)
    address = traits.get("address")
    if isinstance(address, dict):
        traits["address"] = {_ADDRESS.get(k, k): v for k, v in address.items()}
    event = _event("group", data, traits)
    event["groupId"] = data["group_id"]
    return event


def _traits(data: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    return {renames.get(k, k): v for k, v in data.items() if k not in _COMMON and v is not None}


def _event(kind: str, data: dict[str, Any], traits: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind, "traits": traits}
    for source, target in (
        ("message_id", "messageId"),
        ("user_id", "userId"),
        ("anonymous_id", "anonymousId"),
        ("timestamp", "timestamp"),
        ("sent_at", "sentAt"),
    ):
        if data.get(source) is not None:
            event[target] = data[source]
    return event
