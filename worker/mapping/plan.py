"""What one routed event says about its customer and contact (pure, table-driven)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.mapping.attributes import attributes_from
from worker.mapping.model import ContactFields, CustomerFields, Dropped, EventPlan
from worker.mapping.policy import CallOverrides, MappingPolicy
from worker.mapping.routing import company_id, contact_key, traits_of
from worker.mapping.traits import (
    GROUP_CUSTOMER,
    IDENTIFY_COMPANY,
    IDENTIFY_CONTACT,
    IDENTIFY_LEAD,
    IDENTITY_TRAITS,
    NAME_TRAITS,
    clean_standard,
    pick_standard,
    split_name,
)
from worker.mapping.types import flatten

_COMPANY = "company."


def plan_event(
    event: Mapping[str, Any], customer_external_id: str, policy: MappingPolicy
) -> EventPlan:
    """The customer and contact fields one event sets; unusable values come back as Dropped."""
    if not isinstance(event, Mapping):
        return EventPlan(None, None, ())
    if event.get("type") == "group":
        return _plan_group(event, customer_external_id, policy.group, policy.null_clears)
    if event.get("type") == "identify":
        return _plan_identify(event, customer_external_id, policy)
    return EventPlan(None, None, ())


def _leaves(traits: Mapping[str, Any], overrides: CallOverrides) -> dict[str, Any]:
    return {path: v for path, v in flatten(traits) if not overrides.ignores(path)}


def _plan_group(
    event: Mapping[str, Any], external_id: str, ov: CallOverrides, null_clears: bool
) -> EventPlan:
    leaves = _leaves(traits_of(event), ov)
    standard, consumed, dropped = pick_standard(leaves, GROUP_CUSTOMER, ov.standard)
    rest = [(p, v) for p, v in leaves.items() if p not in consumed and p not in IDENTITY_TRAITS]
    custom, more = attributes_from(
        rest, renames=ov.rename, forced=ov.types, null_clears=null_clears
    )
    return EventPlan(CustomerFields(external_id, standard, custom), None, (*dropped, *more))


def _plan_identify(
    event: Mapping[str, Any], customer_external_id: str, policy: MappingPolicy
) -> EventPlan:
    ov = policy.identify
    leaves = _leaves(traits_of(event), ov)
    person = {p: v for p, v in leaves.items() if not p.startswith(_COMPANY)}
    company = {p[len(_COMPANY) :]: v for p, v in leaves.items() if p.startswith(_COMPANY)}
    key = contact_key(event) or ""
    dropped: list[Dropped] = []

    person_std = {p: f for p, f in ov.standard.items() if not p.startswith(_COMPANY)}
    contact_std, consumed, found = pick_standard(person, IDENTIFY_CONTACT, person_std)
    dropped += found
    consumed |= {p for p in NAME_TRAITS if p in person}
    full_name = clean_standard("name", person.get("name"), "name")
    if isinstance(full_name, str) and not {"first_name", "last_name"} & contact_std.keys():
        first, last = split_name(full_name)
        contact_std.update({k: v for k, v in (("first_name", first), ("last_name", last)) if v})

    customer: CustomerFields | None = None
    if company_id(event, policy) == customer_external_id:
        customer, found = _company_customer(customer_external_id, company, ov, policy.null_clears)
        dropped += found
    else:
        if company:
            dropped.append(
                Dropped("company", "company traits without a company.id are not applied")
            )
        if customer_external_id == key:  # the user is its own (lead) customer
            customer, lead_consumed, found = _lead_customer(key, person, leaves, contact_std)
            consumed |= lead_consumed
            dropped += found

    rest = [(p, v) for p, v in person.items() if p not in consumed and p not in IDENTITY_TRAITS]
    custom, found = attributes_from(rest, renames=ov.rename, forced=ov.types)
    dropped += found
    contact = ContactFields(key, contact_std, custom)
    return EventPlan(customer, contact, tuple(dropped))


def _company_customer(
    external_id: str, company: Mapping[str, Any], ov: CallOverrides, null_clears: bool
) -> tuple[CustomerFields | None, list[Dropped]]:
    overrides = {p[len(_COMPANY) :]: f for p, f in ov.standard.items() if p.startswith(_COMPANY)}
    standard, consumed, dropped = pick_standard(company, IDENTIFY_COMPANY, overrides)
    rest = [
        (_COMPANY + p, v)
        for p, v in company.items()
        if p not in consumed and p not in IDENTITY_TRAITS
    ]
    custom, more = attributes_from(
        rest, renames=ov.rename, forced=ov.types, strip_prefix=_COMPANY, null_clears=null_clears
    )
    dropped += more
    if not standard and not custom:
        return None, dropped
    return CustomerFields(external_id, standard, custom), dropped


def _lead_customer(
    key: str,
    person: Mapping[str, Any],
    leaves: Mapping[str, Any],
    contact_std: Mapping[str, str],
) -> tuple[CustomerFields | None, set[str], list[Dropped]]:
    standard, consumed, dropped = pick_standard(person, IDENTIFY_LEAD, {})
    if "name" not in standard:
        full = " ".join(v for k in ("first_name", "last_name") if (v := contact_std.get(k)))
        if full:
            standard["name"] = full
    company = leaves.get("company")  # a plain-text company trait, or company.name without id
    company = company if company is not None else leaves.get(_COMPANY + "name")
    text = clean_standard("company", company, "company")
    if isinstance(text, str):
        standard["company"] = text
    consumed.add("company")
    if not standard:
        return None, consumed, dropped
    return CustomerFields(key, standard, {}), consumed, dropped
