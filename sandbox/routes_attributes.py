"""Customer attributes: all attributes, custom attributes (POST/PUT/DELETE) and tags."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import shapes
from sandbox.paging import MAX_PER_PAGE
from sandbox.records import Customer
from sandbox.responses import ApiError, behaviour_of, json_body, store_of
from sandbox.routes_customers import customer_of, render
from sandbox.validation import (
    Attr,
    Invalid,
    check_key,
    tag_list,
    typed_attributes,
    untyped_attributes,
)

Parser = Callable[[object, Mapping[str, str]], list[Attr]]
DELETED = "Custom attributes deleted from customer"


async def get_attributes(request: Request) -> Response:
    """GET /v1/customers/{uuid}/attributes: the flat object (no "attributes" wrapper)."""
    return JSONResponse(shapes.attributes(customer_of(request)))


async def _set_custom(request: Request, parse: Parser) -> Response:
    store = store_of(request)
    customer = customer_of(request)
    body = await json_body(request)
    store.set_custom(customer, parse(body.get("custom"), store.attribute_types))
    return JSONResponse({"custom": dict(customer.custom)})


async def add_custom(request: Request) -> Response:
    """POST .../attributes/custom with a typed list: defines keys, answers every attribute."""
    return await _set_custom(request, typed_attributes)


async def update_custom(request: Request) -> Response:
    """PUT .../attributes/custom with an object of existing keys."""
    return await _set_custom(request, untyped_attributes)


async def remove_custom(request: Request) -> Response:
    """DELETE .../attributes/custom with {"custom": [keys]}. The answer follows the
    `custom_delete_answer` behaviour: 202 {"custom": what remains (left out when nothing does),
    "message"}, 204 and no body, or 200 {"custom": what remains}."""
    customer = customer_of(request)
    body = await json_body(request)
    keys = body.get("custom")
    if not isinstance(keys, list):
        raise Invalid({"custom": "Must be a list of attribute keys."})
    store_of(request).remove_custom(customer, [check_key(key) for key in keys])
    remaining = dict(customer.custom)
    status = behaviour_of(request).custom_delete_answer
    if status == 204:
        return Response(status_code=204)
    if status == 200:
        return JSONResponse({"custom": remaining})
    answer: dict[str, object] = {"custom": remaining} if remaining else {}
    return JSONResponse({**answer, "message": DELETED}, status_code=202)


async def add_tags(request: Request) -> Response:
    """POST .../attributes/tags: appended without duplicates."""
    customer = customer_of(request)
    tags = tag_list(await json_body(request))
    customer.tags.extend(tag for tag in dict.fromkeys(tags) if tag not in customer.tags)
    return JSONResponse({"tags": list(customer.tags)})


async def remove_tags(request: Request) -> Response:
    """DELETE .../attributes/tags: the tags that remain."""
    customer = customer_of(request)
    gone = set(tag_list(await json_body(request)))
    customer.tags = [tag for tag in customer.tags if tag not in gone]
    return JSONResponse({"tags": list(customer.tags)})


def _by_email(request: Request, body: dict[str, object]) -> list[Customer]:
    email = body.get("email")
    if not isinstance(email, str) or not email:
        raise Invalid({"email": "An email is required."})
    found, _ = store_of(request).find_customers(after=None, size=MAX_PER_PAGE, email=email)
    if not found:
        raise ApiError(404, f'Can\'t find any customers with email: "{email}"', "email")
    return found


async def add_custom_by_email(request: Request) -> Response:
    """POST /v1/customers/attributes/custom {email, custom}: every customer with that email."""
    store = store_of(request)
    body = await json_body(request)
    triples = typed_attributes(body.get("custom"), store.attribute_types)
    store.check_custom(triples)
    found = _by_email(request, body)
    for customer in found:
        store.set_custom(customer, triples)
    return JSONResponse({"entries": [render(request, c) for c in found]})


async def add_tags_by_email(request: Request) -> Response:
    """POST /v1/customers/attributes/tags {email, tags}: every customer with that email."""
    body = await json_body(request)
    tags = tag_list(body)
    found = _by_email(request, body)
    for customer in found:
        customer.tags.extend(tag for tag in dict.fromkeys(tags) if tag not in customer.tags)
    return JSONResponse({"entries": [render(request, c) for c in found]})


_BASE = "/v1/customers/{uuid}/attributes"
ROUTES = [
    Route(_BASE, get_attributes, methods=["GET"]),
    Route(f"{_BASE}/custom", add_custom, methods=["POST"]),
    Route(f"{_BASE}/custom", update_custom, methods=["PUT"]),
    Route(f"{_BASE}/custom", remove_custom, methods=["DELETE"]),
    Route(f"{_BASE}/tags", add_tags, methods=["POST"]),
    Route(f"{_BASE}/tags", remove_tags, methods=["DELETE"]),
    Route("/v1/customers/attributes/custom", add_custom_by_email, methods=["POST"]),
    Route("/v1/customers/attributes/tags", add_tags_by_email, methods=["POST"]),
]
