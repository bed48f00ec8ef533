"""A plan spelled out as ChartMogul operations, blind or against the current state (pure).

Used by `cmrelay map` to show what an event would do; the workers deliver from the same plans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from worker.mapping.model import ContactFields, CustomAttribute, CustomerFields, EventPlan
from worker.mapping.types import parse_timestamp

Operation = dict[str, Any]


def typed_attributes(custom: Mapping[str, CustomAttribute]) -> list[dict[str, Any]]:
    """Custom attributes as ChartMogul's typed list of {key, type, value}."""
    return [{"key": a.key, "type": a.type, "value": a.value} for a in custom.values()]


def _values(custom: Mapping[str, CustomAttribute]) -> dict[str, Any]:
    return {key: attr.value for key, attr in custom.items()}


def upsert_operations(
    external_id: str,
    standard: Mapping[str, Any],
    custom: Mapping[str, CustomAttribute],
    contacts: Iterable[ContactFields],
) -> list[Operation]:
    """The one vocabulary of writes, shared by `cmrelay map` and the DLQ's planned operations."""
    ops: list[Operation] = [
        {"op": "upsert_customer", "external_id": external_id, "standard": dict(standard)}
    ]
    if custom:
        ops.append(
            {
                "op": "set_custom_attributes",
                "customer": external_id,
                "attributes": typed_attributes(custom),
            }
        )
    ops += [
        {"op": "upsert_contact", "customer": external_id, "external_id": contact.external_id,
         "standard": dict(contact.standard), "custom": _values(contact.custom)}
        for contact in contacts
    ]  # fmt: skip
    return ops


def plan_operations(plan: EventPlan, customer_external_id: str) -> list[Operation]:
    """What the plan would write, not knowing what ChartMogul already holds."""
    customer = plan.customer or CustomerFields(customer_external_id)
    contacts = [] if plan.contact is None else [plan.contact]
    return upsert_operations(customer.external_id, customer.standard, customer.custom, contacts)


def same_value(current: Any, wanted: Any) -> bool:
    """True when ChartMogul's stored value already equals what we would send."""
    if isinstance(current, bool) or isinstance(wanted, bool):
        return current is wanted  # True == 1 in Python, but not in ChartMogul
    if current == wanted:
        return True
    if isinstance(current, int | float) and isinstance(wanted, int | float):
        return float(current) == float(wanted)
    if isinstance(current, str) and isinstance(wanted, str):
        moment = parse_timestamp(current)
        return moment is not None and moment == parse_timestamp(wanted)
    return False


def _changes(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: {"from": current.get(key), "to": value}
        for key, value in wanted.items()
        if not same_value(current.get(key), value)
    }


def diff_operations(
    plan: EventPlan,
    customer_external_id: str,
    customer: Mapping[str, Any] | None,
    contacts: Sequence[Mapping[str, Any]],
) -> list[Operation]:
    """Only the operations that would change something, given the customer and its contacts."""
    fields = plan.customer or CustomerFields(customer_external_id)
    if customer is None:
        created: list[Operation] = [
            {
                "op": "create_customer",
                "external_id": fields.external_id,
                "standard": dict(fields.standard),
                "attributes": typed_attributes(fields.custom),
            }
        ]
        if plan.contact is not None:
            created.append(_create_contact(fields.external_id, plan.contact))
        return created
    ops: list[Operation] = []
    uuid = customer.get("uuid")
    existing = (customer.get("attributes") or {}).get("custom") or {}
    changed = _changes(customer, fields.standard)
    updated = _changes(existing, {k: a.value for k, a in fields.custom.items() if k in existing})
    changed |= {f"custom.{key}": change for key, change in updated.items()}
    if changed:  # one PATCH carries standard fields and existing keys, as the relay sends them
        ops.append({"op": "update_customer", "uuid": uuid, "changes": changed})
    new = {k: a for k, a in fields.custom.items() if k not in existing}
    if new:
        ops.append(
            {"op": "add_custom_attributes", "uuid": uuid, "attributes": typed_attributes(new)}
        )
    if plan.contact is not None:
        ops += _contact_diff(fields.external_id, plan.contact, contacts)
    return ops


def _create_contact(customer: str, contact: ContactFields) -> Operation:
    return {
        "op": "create_contact",
        "customer": customer,
        "external_id": contact.external_id,
        "standard": dict(contact.standard),
        "custom": _values(contact.custom),
    }


def _contact_diff(
    customer: str, contact: ContactFields, contacts: Sequence[Mapping[str, Any]]
) -> list[Operation]:
    email = contact.standard.get("email")
    match = next((c for c in contacts if c.get("external_id") == contact.external_id), None)
    if match is None and email:
        match = next((c for c in contacts if c.get("email") == email), None)
    if match is None:
        return [_create_contact(customer, contact)]
    changed = _changes(match, contact.standard)
    custom = _changes(match.get("custom") or {}, _values(contact.custom))
    changed |= {f"custom.{key}": change for key, change in custom.items()}
    if not changed:
        return []
    return [{"op": "update_contact", "uuid": match.get("uuid"), "changes": changed}]
