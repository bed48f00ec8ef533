"""Contacts: create (also under a customer), get, PATCH, delete, list."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import shapes
from sandbox.behaviour import Behaviour
from sandbox.inputs import contact_changes
from sandbox.records import Contact
from sandbox.responses import behaviour_of, json_body, not_found, paging, store_of
from sandbox.routes_customers import customer_of
from sandbox.state import Store
from sandbox.validation import Invalid, required_text


def _contact(request: Request) -> Contact:
    found = store_of(request).contacts.get(request.path_params["uuid"])
    if found is None:
        raise not_found("Contact", "contact_uuid")
    return found


def _kept_custom(
    store: Store, behaviour: Behaviour, changes: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """`changes` with the custom fields the `contact_custom` behaviour keeps; and the keys it
    drops (answered as if accepted: the contact's "custom" just lacks them)."""
    custom: dict[str, object] = changes.get("custom", {})
    mode = behaviour.contact_custom
    if mode == "store" or not custom:
        return changes, []
    if mode == "drop":
        kept = {}
    else:  # drop_unknown: only keys the account already has, on contacts or customers
        known = store.contact_custom_keys | store.attribute_types.keys()
        kept = {key: value for key, value in custom.items() if key in known}
    return {**changes, "custom": kept}, [key for key in custom if key not in kept]


async def create_contact(request: Request) -> Response:
    """POST /v1/contacts (customer_uuid in the body) or /v1/customers/{uuid}/contacts: 201."""
    store = store_of(request)
    body = await json_body(request)
    if "uuid" in request.path_params:
        customer = customer_of(request)
    else:
        wanted = required_text(body, "customer_uuid", "A customer UUID is required.")
        found = store.customers.get(wanted)
        if found is None:
            raise Invalid({"customer_uuid": "Customer not found."})
        customer = found
    source = required_text(body, "data_source_uuid", "A data source UUID is required.")
    if source not in store.data_sources:
        raise Invalid({"data_source_uuid": "Data source not found."})
    changes, dropped = _kept_custom(store, behaviour_of(request), contact_changes(body))
    contact = store.add_contact(customer, source, **changes)
    store.note_dropped("contact", contact.uuid, [f"custom.{key}" for key in dropped])
    return JSONResponse(shapes.contact(contact), status_code=201)


async def get_contact(request: Request) -> Response:
    """GET /v1/contacts/{uuid}."""
    return JSONResponse(shapes.contact(_contact(request)))


async def patch_contact(request: Request) -> Response:
    """PATCH /v1/contacts/{uuid}: custom keys given are merged into the existing ones."""
    store = store_of(request)
    contact = _contact(request)
    changes = contact_changes(await json_body(request))
    changes, dropped = _kept_custom(store, behaviour_of(request), changes)
    if "custom" in changes:
        changes["custom"] = {**contact.custom, **changes["custom"]}
    store.update_contact(contact, changes)
    store.note_dropped("contact", contact.uuid, [f"custom.{key}" for key in dropped])
    return JSONResponse(shapes.contact(contact))


async def delete_contact(request: Request) -> Response:
    """DELETE /v1/contacts/{uuid}: 200 {} as recorded."""
    store_of(request).delete_contact(_contact(request))
    return JSONResponse({})


async def list_contacts(request: Request) -> Response:
    """GET /v1/contacts (or /v1/customers/{uuid}/contacts) with filters; has_more and cursor."""
    after, size = paging(request)
    query = request.query_params
    customer_uuid = query.get("customer_uuid") or None
    if "uuid" in request.path_params:
        customer_uuid = customer_of(request).uuid
    source = query.get("data_source_uuid") or None
    external = query.get("customer_external_id") or None

    def keep(contact: Contact) -> bool:
        return (source is None or contact.data_source_uuid == source) and (
            external is None or contact.customer_external_id == external
        )

    found, more = store_of(request).find_contacts(
        after=after,
        size=size,
        customer_uuid=customer_uuid,
        email=query.get("email") or None,
        keep=keep,
    )
    entries = [shapes.contact(c) for c in found]
    return JSONResponse(shapes.page(entries, found[-1].seq if found else None, more))


ROUTES = [
    Route("/v1/contacts", create_contact, methods=["POST"]),
    Route("/v1/contacts", list_contacts, methods=["GET"]),
    Route("/v1/contacts/{uuid}", get_contact, methods=["GET"]),
    Route("/v1/contacts/{uuid}", patch_contact, methods=["PATCH"]),
    Route("/v1/contacts/{uuid}", delete_contact, methods=["DELETE"]),
    Route("/v1/customers/{uuid}/contacts", create_contact, methods=["POST"]),
    Route("/v1/customers/{uuid}/contacts", list_contacts, methods=["GET"]),
]
