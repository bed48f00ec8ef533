"""ChartMogul's Segment webhook receiver: checks "Send Contact"/"Send Customer" like the action."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.responses import parse_json, store_of
from sandbox.validation import parse_timestamp

COMMON = ("type", "message_id", "timestamp", "sent_at")
CONTACT_FIELDS = frozenset(
    {*COMMON, "user_id", "anonymous_id", "email", "first_name", "last_name", "name", "title"}
    | {"phone", "linked_in", "twitter", "company"}
)
CUSTOMER_FIELDS = frozenset(
    {*COMMON, "user_id", "group_id", "name", "description", "email", "website", "created_at"}
    | {"address"}
)
ADDRESS_FIELDS = frozenset({"street", "city", "state", "postal_code", "country"})
# Segment's sendContact: with only type, message_id, timestamp, sent_at and one id, it refuses.
_USELESS_CONTACT_KEYS = 5


class RejectedError(ValueError):
    """A payload Segment's action would not have sent."""


def _string(payload: dict[str, Any], key: str, *, required: bool = False) -> None:
    if key not in payload:
        if required:
            raise RejectedError(f"missing the required field '{key}'.")
        return
    value = payload[key]
    if not isinstance(value, str) or value == "":
        # Segment drops absent and empty root values before sending: null or "" means a bug.
        raise RejectedError(f"'{key}' must be a non-empty string (absent values are omitted).")


def _datetime(payload: dict[str, Any], key: str, *, required: bool = False) -> None:
    if key not in payload:
        if required:
            raise RejectedError(f"missing the required field '{key}'.")
        return
    value = payload[key]
    try:
        parse_timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise RejectedError(f"'{key}' must be an ISO 8601 datetime.") from None


def _object(payload: dict[str, Any], key: str, allowed: frozenset[str]) -> dict[str, Any] | None:
    value = payload.get(key)
    if value is None and key not in payload:
        return None
    if not isinstance(value, dict) or not set(value) <= allowed:
        raise RejectedError(f"'{key}' must be an object with only {', '.join(sorted(allowed))}.")
    for sub, text in value.items():
        # Segment strips empty strings at the root only, so "" may arrive inside an object.
        if not isinstance(text, str):
            raise RejectedError(f"'{key}.{sub}' must be a string.")
    return value


def _common(payload: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(payload) - allowed
    if unknown:
        raise RejectedError(f"unexpected fields: {', '.join(sorted(unknown))}.")
    _string(payload, "type", required=True)
    _string(payload, "message_id", required=True)
    _datetime(payload, "timestamp", required=True)
    _datetime(payload, "sent_at", required=True)


def check_contact(payload: dict[str, Any]) -> None:
    """The checks of Segment's sendContact action (schema, then its perform())."""
    _common(payload, CONTACT_FIELDS)
    for key in CONTACT_FIELDS - set(COMMON) - {"company"}:
        _string(payload, key)
    company = _object(payload, "company", frozenset({"id", "name"}))
    if company is not None and not company.get("id"):
        raise RejectedError("missing the required field 'company.id'.")
    if "user_id" not in payload and "anonymous_id" not in payload:
        raise RejectedError("The user_id and/or anonymous_id must be present.")
    if len(payload) <= _USELESS_CONTACT_KEYS:
        raise RejectedError("The event contains no information of interest to Chartmogul.")
    if "email" in payload and "@" not in payload["email"]:
        raise RejectedError("'email' must be an email address.")


def check_customer(payload: dict[str, Any]) -> None:
    """The checks of Segment's sendCustomer action (its schema; perform() adds none)."""
    _common(payload, CUSTOMER_FIELDS)
    _string(payload, "user_id", required=True)
    _string(payload, "group_id", required=True)
    for key in ("name", "description", "email", "website"):
        _string(payload, key)
    _datetime(payload, "created_at")
    _object(payload, "address", ADDRESS_FIELDS)


CHECKS = {"Send Contact": check_contact, "Send Customer": check_customer}


async def receive(request: Request) -> Response:
    """POST /segment-webhook/{token}: 200 and recorded, or 400 with the reason."""
    token = request.app.state.sandbox.config.webhook_token
    if token is not None and request.path_params["token"] != token:
        return JSONResponse({"error": "Unknown webhook"}, status_code=404)
    try:
        payload = parse_json(await request.body())
    except (ValueError, UnicodeDecodeError):
        return JSONResponse({"error": "The body is not valid JSON."}, status_code=400)
    if payload == {}:
        # Segment's testAuthentication posts {} and expects a 2xx.
        return JSONResponse({"status": "ok"})
    if not isinstance(payload, dict):
        return JSONResponse({"error": "The body must be a JSON object."}, status_code=400)
    try:
        kind = payload.get("type")
        check = CHECKS.get(kind) if isinstance(kind, str) else None
        if check is None:
            raise RejectedError('type must be "Send Contact" or "Send Customer".')
        check(payload)
    except RejectedError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    store_of(request).webhook_receipts.append(
        {
            "received_at": datetime.now(UTC).isoformat(),
            "content_type": request.headers.get("content-type"),
            "user_agent": request.headers.get("user-agent"),
            "payload": payload,
        }
    )
    return JSONResponse({"status": "accepted"})


ROUTES = [Route("/segment-webhook/{token}", receive, methods=["POST"])]
