"""The "ChartMogul (Actions)" payloads, built and validated the way Segment's destination does
(pure).

actions-core resolves each action's default mapping, removes empty values, validates with Ajv
(`coerceTypes: "array"`, ajv-formats) and runs the action's `perform`; an event that fails any
step is refused whole. `build_payload` does the same and says why it refused; `encode_like_segment`
writes the JSON text as JSON.stringify does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from worker.delivery.webhook.formats import is_date_like, is_email, is_uri, is_uri_reference
from worker.delivery.webhook.js import js_number, js_to_number, stringify

Kind = Literal["string", "email", "uri", "uri-reference", "datetime"]
_MISSING: Any = object()  # JavaScript's undefined: the key is left out
_USELESS_CONTACT_KEYS = 5  # type, message_id, timestamp, sent_at and one id: "no information"
# ingest/actions.py keeps the payload /chartmogul received in context[CARRIED].
CARRIED = "chartmogul_actions"
_CARRIED_IDS = (
    ("message_id", "messageId"),
    ("user_id", "userId"),
    ("anonymous_id", "anonymousId"),
    ("group_id", "groupId"),
)
_FORMATS: dict[str, Callable[[str], bool]] = {
    "email": is_email,
    "uri": is_uri,
    "uri-reference": is_uri_reference,
    "datetime": is_date_like,
}


@dataclass(frozen=True)
class Field:
    """One action field: its key, its default mapping path, its type and format."""

    key: str
    path: str
    kind: Kind = "string"
    required: bool = False


@dataclass(frozen=True)
class ObjectField:
    """An object field whose default mapping is one path per property."""

    key: str
    properties: tuple[Field, ...]


@dataclass(frozen=True)
class Refused:
    """Segment's validation would discard the event; `reason` names fields, never values."""

    reason: str


def _common(action: str, *ids: Field) -> tuple[Field | ObjectField, ...]:
    return (
        Field("type", f"={action}", required=True),
        Field("message_id", "messageId", required=True),
        Field("timestamp", "timestamp", "datetime", required=True),
        Field("sent_at", "sentAt", "datetime", required=True),
        *ids,
    )


# Field order is the order of the action's `fields`, which is the order mapping-kit resolves
# and JSON.stringify writes. Send Customer puts group_id before user_id, as the destination's
# own "processes valid input" test vector does.
SEND_CONTACT = (
    *_common("Send Contact", Field("user_id", "userId"), Field("anonymous_id", "anonymousId")),
    Field("email", "traits.email", "email"),
    Field("first_name", "traits.first_name"),
    Field("last_name", "traits.last_name"),
    Field("name", "traits.name"),
    Field("title", "traits.title"),
    Field("phone", "traits.phone"),
    Field("linked_in", "traits.linkedIn", "uri"),
    Field("twitter", "traits.twitter"),
    ObjectField(
        "company",
        (Field("id", "traits.company.id", required=True), Field("name", "traits.company.name")),
    ),
)
SEND_CUSTOMER = (
    *_common(
        "Send Customer",
        Field("group_id", "groupId", required=True),
        Field("user_id", "userId", required=True),
    ),
    Field("name", "traits.name"),
    Field("description", "traits.description"),
    Field("email", "traits.email", "email"),
    Field("website", "traits.website", "uri-reference"),
    Field("created_at", "traits.createdAt", "datetime"),
    ObjectField(
        "address",
        tuple(
            Field(key, f"traits.address.{trait}")
            for key, trait in (
                ("street", "street"),
                ("city", "city"),
                ("state", "state"),
                ("postal_code", "postalCode"),
                ("country", "country"),
            )
        ),
    ),
)
ACTIONS = {"identify": ("Send Contact", SEND_CONTACT), "group": ("Send Customer", SEND_CUSTOMER)}


def _resolve(event: Mapping[str, Any], path: str) -> Any:
    """mapping-kit's @path: undefined as soon as a step is not an object."""
    if path.startswith("="):
        return path[1:]  # a literal (the hidden `type` field)
    value: Any = event
    for step in path.split("."):
        if not isinstance(value, Mapping) or step not in value:
            return _MISSING
        value = value[step]
    return value


def _coerce(  # noqa: PLR0911 (one return per Ajv coercion rule reads as the rule list)
    field: Field, value: Any, name: str
) -> tuple[Any, str | None]:
    """Ajv's type coercion and format check: (value, None) or (_, why `name` fails)."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if field.kind == "datetime" and is_number:
        return value, None  # type ["string", "number"]: numbers pass, unformatted
    if field.kind == "datetime" and isinstance(value, str):
        pass  # strings pass the type, then the format
    elif isinstance(value, list) and len(value) == 1:
        # coerceTypes "array": a one-item array is its item, coerced again. For the
        # two-type datetime fields Ajv never keeps the item as it is: a numeric string
        # becomes a number, a number becomes a string, any other string is a type error.
        value = value[0]
        if field.kind == "datetime" and isinstance(value, str):
            number = js_to_number(value) if value else None
            if number is None:
                return value, f"{name} must be a string or a number"
            return number, None
    elif field.kind == "datetime" and value is None:
        return value, f"{name} must be a string or a number"
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int | float):
        value = js_number(value)
    elif value is None:
        value = ""  # only reachable as [null]: Ajv coerces null to ""
    elif not isinstance(value, str):
        return value, f"{name} must be a string"
    check = _FORMATS.get(field.kind)
    if check is not None and not check(value):
        return value, f"{name} is not a valid {field.kind}"
    return value, None


def _scalar(
    field: Field, value: Any, *, parent: str, errors: list[str], out: dict[str, Any]
) -> None:
    # removeEmptyValues: null goes everywhere, "" only at the root; both then count as absent.
    if value is _MISSING or value is None or (not parent and value == ""):
        return
    coerced, error = _coerce(field, value, f"{parent}.{field.key}" if parent else field.key)
    if error:
        errors.append(error)
    out[field.key] = coerced


def _map(
    source: Mapping[str, Any], fields: tuple[Field | ObjectField, ...], *, carried: bool
) -> tuple[dict[str, Any], list[str]]:
    """Resolve and validate every field: from the event by the default mapping, or (carried)
    from an Actions payload Segment already mapped, whose absent objects stay absent."""
    payload: dict[str, Any] = {}
    errors: list[str] = []
    for field in fields:
        if isinstance(field, Field):
            if carried and not field.path.startswith("="):
                value = source.get(field.key, _MISSING)
            else:
                value = _resolve(source, field.path)
            _scalar(field, value, parent="", errors=errors, out=payload)
            if field.required and field.key not in payload:
                errors.append(f"missing the required field '{field.key}'")
            continue
        raw = source.get(field.key) if carried else None
        if carried and raw is None:
            continue
        if carried and not isinstance(raw, Mapping):
            errors.append(f"{field.key} must be an object")
            continue
        # A default object mapping resolves to an object even when every property is undefined.
        nested: dict[str, Any] = {}
        for prop in field.properties:
            value = raw.get(prop.key, _MISSING) if raw is not None else _resolve(source, prop.path)
            _scalar(prop, value, parent=field.key, errors=errors, out=nested)
            if prop.required and prop.key not in nested:
                errors.append(f"{field.key} is missing the required field '{prop.key}'")
        payload[field.key] = nested
    return payload, errors


def _text_of(value: Any) -> str | None:
    if value is None or value is _MISSING or isinstance(value, bool):
        return None
    return js_number(value) if isinstance(value, int | float) else str(value)


def carried_payload(event: Mapping[str, Any], action: str) -> Mapping[str, Any] | None:
    """The Actions payload /chartmogul received for this event, if it still describes it."""
    context = event.get("context")
    carried = context.get(CARRIED) if isinstance(context, Mapping) else None
    if not isinstance(carried, Mapping) or carried.get("type") != action:
        return None
    for key, name in _CARRIED_IDS:
        if _text_of(carried.get(key)) != _text_of(event.get(name)):
            return None  # edited since (a DLQ fix) or not ours: build from the event instead
    return carried


def build_payload(event: Any) -> dict[str, Any] | Refused:
    """The Send Contact (identify) / Send Customer (group) payload, or why Segment refuses it."""
    if not isinstance(event, Mapping):
        return Refused("not a JSON object")
    kind = event.get("type")
    action = ACTIONS.get(kind) if isinstance(kind, str) else None
    if action is None:
        return Refused(f"no action subscribes to {str(kind)[:40]!r} calls")
    name, fields = action
    carried = carried_payload(event, name)
    payload, errors = _map(carried or event, fields, carried=carried is not None)
    if errors:
        return Refused(f"{name}: " + "; ".join(errors))
    if name == "Send Contact":
        return _perform_send_contact(payload)
    return payload


def _perform_send_contact(payload: dict[str, Any]) -> dict[str, Any] | Refused:
    """The action's own checks in `perform`, after the schema."""
    if not payload.get("user_id") and not payload.get("anonymous_id"):
        return Refused("Send Contact: The user_id and/or anonymous_id must be present.")
    company = payload.get("company")
    if isinstance(company, dict) and not company.get("id"):
        del payload["company"]
    if len(payload) <= _USELESS_CONTACT_KEYS:
        return Refused("Send Contact: The event contains no information of interest to Chartmogul.")
    return payload


def actions_payloads(event: Any) -> dict[str, Any] | None:
    """The payload Segment would POST, or None when it would refuse the event."""
    built = build_payload(event)
    return None if isinstance(built, Refused) else built


def encode_like_segment(payload: Mapping[str, Any]) -> bytes:
    """JSON.stringify(payload) as UTF-8 bytes: compact, keys in order, non-ASCII kept."""
    return stringify(payload)
