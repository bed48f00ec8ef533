"""Customers: create, get, PATCH, delete, list, search by email, merge."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import shapes
from sandbox.inputs import customer_attributes, customer_changes, primary_contact
from sandbox.records import Customer
from sandbox.responses import ApiError, json_body, not_found, paging, store_of
from sandbox.state import Store
from sandbox.validation import Invalid, required_text


def customer_of(request: Request, param: str = "uuid") -> Customer:
    """The customer named in the path, or 404."""
    found = store_of(request).customers.get(request.path_params[param])
    if found is None:
        raise not_found("Customer", "customer_uuid")
    return found


def render(request: Request, customer: Customer) -> dict[str, object]:
    """A customer as JSON."""
    return shapes.customer(customer, store_of(request).data_sources)


async def create_customer(request: Request) -> Response:
    """POST /v1/customers: 201, or 422 for a duplicate external id in the data source."""
    store = store_of(request)
    body = await json_body(request)
    source = required_text(body, "data_source_uuid", "A data source UUID is required.")
    if source not in store.data_sources:
        raise Invalid({"data_source_uuid": "Data source not found."})
    external_id = required_text(body, "external_id", "An external ID is required.")
    changes = customer_changes(body)
    contact = primary_contact(body)
    tags, custom = customer_attributes(body, store.attribute_types)
    store.check_custom(custom)
    customer = store.add_customer(source, external_id, **changes)  # 422 if a duplicate
    customer.tags = list(dict.fromkeys(tags))
    store.set_custom(customer, custom)
    if contact:
        store.set_primary_contact(customer, contact)
    return JSONResponse(render(request, customer), status_code=201)


async def get_customer(request: Request) -> Response:
    """GET /v1/customers/{uuid}."""
    return JSONResponse(render(request, customer_of(request)))


async def patch_customer(request: Request) -> Response:
    """PATCH /v1/customers/{uuid}: custom attributes as an object (or a typed list)."""
    store = store_of(request)
    customer = customer_of(request)
    body = await json_body(request)
    changes = customer_changes(body)
    contact = primary_contact(body)
    tags, custom = customer_attributes(body, store.attribute_types)
    store.set_custom(customer, custom)
    store.update_customer(customer, changes)
    if contact:
        store.set_primary_contact(customer, contact)
    customer.tags.extend(tag for tag in dict.fromkeys(tags) if tag not in customer.tags)
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


async def merge_customers(request: Request) -> Response:
    """POST /v1/customers/merges: 202 {} (done at once here; asynchronous at ChartMogul)."""
    store = store_of(request)
    body = await json_body(request)
    source, target = _merge_side(store, body, "from"), _merge_side(store, body, "into")
    if source is target:
        raise Invalid({"from": "Cannot merge a customer into itself."})
    store.merge_customers(source, target)
    return JSONResponse({}, status_code=202)


ROUTES = [
    Route("/v1/customers", create_customer, methods=["POST"]),
    Route("/v1/customers", list_customers, methods=["GET"]),
    Route("/v1/customers/search", search_customers, methods=["GET"]),
    Route("/v1/customers/merges", merge_customers, methods=["POST"]),
    Route("/v1/customers/{uuid}", get_customer, methods=["GET"]),
    Route("/v1/customers/{uuid}", patch_customer, methods=["PATCH"]),
    Route("/v1/customers/{uuid}", delete_customer, methods=["DELETE"]),
]
