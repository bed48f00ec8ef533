"""Customers: create, get, PATCH, delete, list, search by email, merge and unmerge."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import shapes
from sandbox.behaviour import Behaviour
from sandbox.inputs import customer_attributes, customer_changes, primary_contact
from sandbox.records import Customer
from sandbox.responses import ApiError, behaviour_of, json_body, not_found, paging, store_of
from sandbox.state import Store
from sandbox.validation import Invalid, required_text

UNMERGE_MOVABLE = ("tasks", "opportunities", "notes")  # move_to_new_customer values


def customer_of(request: Request, param: str = "uuid") -> Customer:
    """The customer named in the path, or 404."""
    found = store_of(request).customers.get(request.path_params[param])
    if found is None:
        raise not_found("Customer", "customer_uuid")
    return found


def render(request: Request, customer: Customer) -> dict[str, object]:
    """A customer as JSON."""
    return shapes.customer(customer, store_of(request).data_sources)


def us_only_state(
    behaviour: Behaviour, changes: dict[str, Any], country: str | None, state: str | None
) -> bool:
    """Null `state` in `changes` unless the country is US (ChartMogul keeps state only there);
    True when a state that was sent is dropped."""
    if not behaviour.state_us_only or country == "US":
        return False
    sent = changes.get("state") is not None
    if "state" in changes or state is not None:
        changes["state"] = None
    return sent


async def create_customer(request: Request) -> Response:
    """POST /v1/customers: 201, or 422 for a duplicate external id in the data source."""
    store = store_of(request)
    body = await json_body(request)
    source = required_text(body, "data_source_uuid", "A data source UUID is required.")
    if source not in store.data_sources:
        raise Invalid({"data_source_uuid": "Data source not found."})
    external_id = required_text(body, "external_id", "An external ID is required.")
    changes = customer_changes(body)
    dropped_state = us_only_state(behaviour_of(request), changes, changes.get("country"), None)
    contact = primary_contact(body)
    tags, custom, _ = customer_attributes(body, store.attribute_types)
    store.check_custom(custom)
    customer = store.add_customer(source, external_id, **changes)  # 422 if a duplicate
    customer.tags = list(dict.fromkeys(tags))
    store.set_custom(customer, custom)
    if contact:
        store.set_primary_contact(customer, contact)
    if dropped_state:
        store.note_dropped("customer", customer.uuid, ["state"])
    return JSONResponse(render(request, customer), status_code=201)


async def get_customer(request: Request) -> Response:
    """GET /v1/customers/{uuid}."""
    return JSONResponse(render(request, customer_of(request)))


async def patch_customer(request: Request) -> Response:
    """PATCH /v1/customers/{uuid}: custom attributes as an object (or a typed list); keys never
    created follow the `patch_new_custom` behaviour."""
    store = store_of(request)
    behaviour = behaviour_of(request)
    customer = customer_of(request)
    body = await json_body(request)
    changes = customer_changes(body)
    country = changes.get("country", customer.country)
    dropped = ["state"] if us_only_state(behaviour, changes, country, customer.state) else []
    contact = primary_contact(body)
    tags, custom, ignored = customer_attributes(
        body, store.attribute_types, behaviour.patch_new_custom
    )
    store.set_custom(customer, custom)
    store.update_customer(customer, changes)
    if contact:
        store.set_primary_contact(customer, contact)
    customer.tags.extend(tag for tag in dict.fromkeys(tags) if tag not in customer.tags)
    store.note_dropped("customer", customer.uuid, [*dropped, *(f"custom.{k}" for k in ignored)])
    return JSONResponse(render(request, customer))


async def delete_customer(request: Request) -> Response:
    """DELETE /v1/customers/{uuid}: 204."""
    store_of(request).delete_customer(customer_of(request))
    return Response(status_code=204)


async def list_customers(request: Request) -> Response:
    """GET /v1/customers with external_id, data_source_uuid and status filters."""
    after, size = paging(request)
    query = request.query_params
    status = query.get("status")
    wanted = status.replace("_", " ") if status else None
    found, more = store_of(request).find_customers(
        after=after,
        size=size,
        data_source_uuid=query.get("data_source_uuid") or None,
        external_id=query.get("external_id") or None,
        keep=(lambda c: c.status == wanted) if wanted else None,
        merged=behaviour_of(request).lookup_matches_merged,
    )
    return _page(request, found, more)


def _page(request: Request, found: list[Customer], more: bool) -> Response:
    entries = [render(request, c) for c in found]
    return JSONResponse(shapes.page(entries, found[-1].id if found else None, more))


async def search_customers(request: Request) -> Response:
    """GET /v1/customers/search?email=: a page, or 404 when nobody has that email."""
    after, size = paging(request)
    email = request.query_params.get("email", "")
    if not email:
        raise ApiError(400, "The email parameter is required", "email")
    store = store_of(request)
    associated = request.query_params.get("with_associated_emails") == "true"
    among = store.customers_with_email(email, contacts=associated)
    found, more = store.find_customers(after=after, size=size, among=among)
    if not found and after is None:
        raise ApiError(404, f'Can\'t find any customers with email: "{email}"', "email")
    return _page(request, found, more)


def _merge_side(store: Store, body: dict[str, object], side: str) -> Customer:
    ref = body.get(side)
    if not isinstance(ref, dict):
        raise Invalid({side: "Must name a customer_uuid or a data_source_uuid and external_id."})
    found: Customer | None = None
    if isinstance(ref.get("customer_uuid"), str):
        found = store.customers.get(ref["customer_uuid"])
    elif isinstance(ref.get("data_source_uuid"), str) and isinstance(ref.get("external_id"), str):
        found = store.customer_by_identity(ref["data_source_uuid"], ref["external_id"])
    if found is None:
        raise not_found("Customer", side)
    return found


def _run(request: Request, job: Any) -> None:
    """Do `job` now, or after the `merge_delay` behaviour (ChartMogul merges asynchronously)."""
    delay = behaviour_of(request).merge_delay
    if delay > 0:
        store_of(request).later(time.monotonic() + delay, job)
    else:
        job()


async def merge_customers(request: Request) -> Response:
    """POST /v1/customers/merges {"from": ref, "into": ref}: 202 {}. A ref is {customer_uuid}
    or {data_source_uuid, external_id}."""
    store = store_of(request)
    body = await json_body(request)
    source, target = _merge_side(store, body, "from"), _merge_side(store, body, "into")
    if source is target:
        raise Invalid({"from": "Cannot merge a customer into itself."})

    def job() -> None:
        # Done later, both must still be there (a merged-away or deleted one is skipped).
        if (
            store.customers.get(source.uuid) is source
            and store.customers.get(target.uuid) is target
        ):
            store.merge_customers(source, target)

    _run(request, job)
    return JSONResponse({}, status_code=202)


async def unmerge_customers(request: Request) -> Response:
    """POST /v1/customers/unmerges {customer_uuid, data_source_uuid, external_id,
    move_to_new_customer}: 202 {}; the identity leaves the customer as a new customer."""
    store = store_of(request)
    body = await json_body(request)
    source = required_text(body, "data_source_uuid", "A data source UUID is required.")
    external_id = required_text(body, "external_id", "An external ID is required.")
    moving = body.get("move_to_new_customer", [])
    if not isinstance(moving, list) or any(item not in UNMERGE_MOVABLE for item in moving):
        raise Invalid({"move_to_new_customer": f"Must be a list of {', '.join(UNMERGE_MOVABLE)}."})
    wanted = body.get("customer_uuid")
    if wanted is None:
        found = store.customer_by_identity(source, external_id)
    elif isinstance(wanted, str):
        found = store.customers.get(wanted)
    else:
        raise Invalid({"customer_uuid": "Must be a customer UUID."})
    if found is None:
        raise not_found("Customer", "customer_uuid")
    customer = found
    store.check_unmerge(customer, source, external_id)

    def job() -> None:
        if store.customers.get(customer.uuid) is customer:
            with contextlib.suppress(Invalid):  # undone meanwhile: nothing left to split off
                store.unmerge_customer(customer, source, external_id)

    _run(request, job)
    return JSONResponse({}, status_code=202)


ROUTES = [
    Route("/v1/customers", create_customer, methods=["POST"]),
    Route("/v1/customers", list_customers, methods=["GET"]),
    Route("/v1/customers/search", search_customers, methods=["GET"]),
    Route("/v1/customers/merges", merge_customers, methods=["POST"]),
    Route("/v1/customers/unmerges", unmerge_customers, methods=["POST"]),
    Route("/v1/customers/{uuid}", get_customer, methods=["GET"]),
    Route("/v1/customers/{uuid}", patch_customer, methods=["PATCH"]),
    Route("/v1/customers/{uuid}", delete_customer, methods=["DELETE"]),
]
