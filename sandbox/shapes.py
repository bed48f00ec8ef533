"""JSON renderings of the records, key for key like the real API (and its official client)."""

from __future__ import annotations

from typing import Any

import pycountry

from sandbox.paging import encode_cursor
from sandbox.records import CONTACT_TEXT_FIELDS, Contact, Customer, DataSource


def _country_name(code: str | None) -> str | None:
    # The top-level `country` is the ISO code; `address.country` is the full name.
    if not code:
        return None
    found = pycountry.countries.get(alpha_2=code)
    return str(found.name) if found is not None else code


def customer(record: Customer, sources: dict[str, DataSource]) -> dict[str, Any]:
    """A customer object: hyphenated keys, "" for unset name/email/company, null elsewhere."""
    source = sources.get(record.data_source_uuid)
    slug = record.name.replace(" ", "_") or "customer"
    return {
        "id": record.id,
        "uuid": record.uuid,
        "external_id": record.external_id,
        "name": record.name,
        "email": record.email,
        "status": record.status,
        "customer-since": None,
        "attributes": attributes(record),
        "data_source_uuid": record.data_source_uuid,
        "data_source_uuids": record.data_source_uuids,
        "external_ids": record.external_ids,
        "company": record.company,
        "country": record.country,
        "state": record.state,
        "city": record.city,
        "zip": record.zip,
        "lead_created_at": record.lead_created_at,
        "free_trial_started_at": record.free_trial_started_at,
        "address": {
            "country": _country_name(record.country),
            "state": record.state,
            "city": record.city,
            "address_zip": record.zip,
        },
        "mrr": 0,
        "arr": 0,
        "billing-system-url": None,
        "chartmogul-url": f"https://app.chartmogul.com/#/customers/{record.id}-{slug}",
        "billing-system-type": source.system if source else "Import API",
        "currency": "USD",
        "currency-sign": "$",
        "owner": record.owner,
        "website_url": record.website_url,
    }


def attributes(record: Customer) -> dict[str, Any]:
    """The flat attributes object (GET /customers/{uuid}/attributes)."""
    return {
        "tags": list(record.tags),
        "stripe": {},
        "clearbit": {},
        "custom": dict(record.custom),
    }


def contact(record: Contact) -> dict[str, Any]:
    """A contact object: unset fields are null, `custom` is an object."""
    body: dict[str, Any] = {
        "uuid": record.uuid,
        "customer_uuid": record.customer_uuid,
        "customer_external_id": record.customer_external_id,
        "data_source_uuid": record.data_source_uuid,
        "position": record.position,
    }
    body.update({name: getattr(record, name) for name in CONTACT_TEXT_FIELDS})
    body["last_seen"] = record.last_seen
    body["custom"] = dict(record.custom)
    return body


def data_source(record: DataSource) -> dict[str, Any]:
    """A data source object."""
    return {
        "uuid": record.uuid,
        "name": record.name,
        "system": record.system,
        "created_at": record.created_at,
        "status": record.status,
    }


def page(entries: list[dict[str, Any]], last_seq: int | None, has_more: bool) -> dict[str, Any]:
    """A cursor page. Only entries/has_more/cursor: the official client rejects other keys."""
    return {
        "entries": entries,
        "has_more": has_more,
        "cursor": encode_cursor(last_seq) if has_more and last_seq is not None else None,
    }


def error(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """ChartMogul's {"code", "message", "param"} error body."""
    return {"code": status, "message": message, "param": param}
