"""The ingest's OpenAPI document, generated from the marshmallow schemas (GET /openapi.json)."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from cmrelay import __version__
from ingest import schemas

_OK = {
    "description": "Queued (rejected items listed)",
    "content": {"application/json": {"schema": "Success"}},
}
_ERRORS: dict[str, str] = {
    "400": "Invalid JSON or fields (the body names each bad field)",
    "401": "Missing or wrong write key, or a bad X-Signature",
    "413": "Body, decompressed body, event or batch over its limit",
    "503": "Redis unreachable or the queue above its high-water mark: retry after Retry-After",
}


def _ref(*names: str) -> dict[str, Any]:
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in names]
    return refs[0] if len(refs) == 1 else {"oneOf": refs}


_EVENT = _ref("Identify", "Group")
_POSTS: dict[str, tuple[dict[str, Any], str]] = {
    "/v1/identify": (
        _ref("Identify"),
        "Segment Identify call (Basic auth or writeKey in the body)",
    ),
    "/v1/group": (_ref("Group"), "Segment Group call"),
    "/v1/batch": (_ref("Batch"), "Segment batch: valid items are queued, invalid ones listed"),
    "/webhook": (
        {"oneOf": [_EVENT, {"type": "array", "items": _EVENT}]},
        "Segment Webhooks destination: one event, or a JSON array (Actions batching); "
        "X-Signature when a shared secret is set, else a write key (Basic or ?writeKey=); "
        "an array always needs the write key (Segment signs only its first event)",
    ),
    "/chartmogul": (
        _ref("ActionsContact", "ActionsCustomer"),
        "ChartMogul (Actions) destination payload; write key as Basic or ?writeKey=",
    ),
}
for _kind in ("track", "page", "screen", "alias"):
    _POSTS[f"/v1/{_kind}"] = ({"type": "object"}, f"Segment {_kind} call: accepted, not queued")


def build_spec() -> dict[str, Any]:
    """The OpenAPI 3 document as a dict."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="chartmogul-relay ingest",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[plugin],
    )
    # apispec leaves map_to_openapi_type unannotated, hence the ignores.
    plugin.map_to_openapi_type(schemas.IsoDateTime, "string", "date-time")  # type: ignore[no-untyped-call]
    plugin.map_to_openapi_type(schemas.Identifier, "string", None)  # type: ignore[no-untyped-call]
    for name, schema in (
        ("Identify", schemas.IdentifySchema),
        ("Group", schemas.GroupSchema),
        ("Batch", schemas.BatchSchema),
        ("ActionsContact", schemas.ActionsContactSchema),
        ("ActionsCustomer", schemas.ActionsCustomerSchema),
        ("Success", schemas.SuccessSchema),
        ("Error", schemas.ErrorSchema),
    ):
        spec.components.schema(name, schema=schema)
    errors = {
        code: {"description": text, "content": {"application/json": {"schema": "Error"}}}
        for code, text in _ERRORS.items()
    }
    for path, (body, summary) in _POSTS.items():
        request = {"required": True, "content": {"application/json": {"schema": body}}}
        spec.path(
            path=path,
            operations={"post": {"summary": summary, "requestBody": request,
                                 "responses": {"200": _OK, **errors}}},
        )  # fmt: skip
    for path, summary in (
        ("/health", "Process is up"),
        ("/ready", "Redis reachable and queue under its high-water mark; reports a delivery pause"),
        ("/metrics", "Prometheus text format"),
    ):
        spec.path(
            path=path,
            operations={"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}},
        )
    return spec.to_dict()
