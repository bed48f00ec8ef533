"""Request bodies of customers and contacts turned into validated field changes (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.records import CONTACT_TEXT_FIELDS, CUSTOMER_BLANK_FIELDS, CUSTOMER_TEXT_FIELDS
from sandbox.validation import (
    NOT_CREATED,
    Attr,
    Invalid,
    check_key,
    country_code,
    lead_status,
    optional_date,
    optional_text,
    typed_attributes,
    untyped_attributes,
)


def customer_changes(body: Mapping[str, Any]) -> dict[str, Any]:
    """The standard customer fields present in `body`, validated."""
    changes: dict[str, Any] = {}
    for name in CUSTOMER_BLANK_FIELDS:
        if name in body:
            changes[name] = optional_text(body, name) or ""
    for name in CUSTOMER_TEXT_FIELDS:
        if name in body:
            changes[name] = optional_text(body, name)
    for name in ("lead_created_at", "free_trial_started_at"):
        if name in body:
            changes[name] = optional_date(body, name)
    if "country" in body:
        changes["country"] = country_code(body["country"])
    if "status" in body and body["status"] is not None:
        changes["status"] = lead_status(body["status"])
    return changes


def primary_contact(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The contact fields of `primary_contact`, which ChartMogul turns into a contact."""
    contact = body.get("primary_contact")
    if contact is None:
        return None
    if not isinstance(contact, dict):
        raise Invalid({"primary_contact": "Must be an object."})
    try:
        return contact_changes(contact)
    except Invalid as exc:
        raise Invalid({f"primary_contact.{k}": v for k, v in exc.errors.items()}) from None


def customer_attributes(
    body: Mapping[str, Any], known: Mapping[str, str], new_keys: str = "create"
) -> tuple[list[str], list[Attr], list[str]]:
    """(tags, custom attributes, ignored keys) from `attributes`; custom as a typed list or a
    PATCH object. `new_keys` says what happens to keys never created: create, ignore, reject."""
    attributes = body.get("attributes")
    if attributes is None:
        return [], [], []
    if not isinstance(attributes, dict):
        raise Invalid({"attributes": "Must be an object with tags and custom."})
    tags = attributes.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise Invalid({"attributes.tags": "Must be a list of non-empty strings."})
    custom = attributes.get("custom")
    if not custom:
        return tags, [], []
    if isinstance(custom, dict):
        attrs = untyped_attributes(custom, known, infer=True)
    else:
        attrs = typed_attributes(custom, known)
    fresh = [attr.key for attr in attrs if attr.key not in known]
    if new_keys == "create" or not fresh:
        return tags, attrs, []
    if new_keys == "reject":
        raise Invalid({f"custom.{key}": NOT_CREATED for key in fresh})
    return tags, [attr for attr in attrs if attr.key in known], fresh


def contact_changes(body: Mapping[str, Any]) -> dict[str, Any]:
    """The contact fields present in `body`, validated; `custom` becomes an object."""
    changes: dict[str, Any] = {}
    for name in CONTACT_TEXT_FIELDS:
        if name in body:
            changes[name] = optional_text(body, name)
    if "position" in body:
        position = body["position"]
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise Invalid({"position": "Must be a non-negative integer."})
        changes["position"] = position
    if "last_seen" in body:
        changes["last_seen"] = optional_date(body, "last_seen")
    if body.get("custom") is not None:
        changes["custom"] = contact_custom(body["custom"])
    return changes


def contact_custom(custom: object) -> dict[str, object]:
    """A contact's custom attributes: a list of {key, value} (an object is accepted too)."""
    if isinstance(custom, dict):
        custom = [{"key": k, "value": v} for k, v in custom.items()]
    if not isinstance(custom, list):
        raise Invalid({"custom": "Must be a list of {key, value} objects."})
    out: dict[str, object] = {}
    for item in custom:
        if not isinstance(item, dict) or "key" not in item or "value" not in item:
            raise Invalid({"custom": "Each attribute needs a key and a value."})
        value = item["value"]
        if isinstance(value, dict | list):
            raise Invalid({f"custom.{item['key']}": "Value must be a string, number or boolean."})
        if isinstance(value, str) and len(value) > 255:
            raise Invalid({f"custom.{item['key']}": "Value is longer than 255 characters."})
        out[check_key(item["key"])] = value
    return out
