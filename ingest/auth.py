"""Who may write: Segment write keys (Basic username or body `writeKey`) and X-Signature HMACs.

Comparisons are constant-time, and neither keys nor signatures are ever logged or echoed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from cmrelay.settings import Secret
from ingest.errors import Unauthorized


def basic_username(authorization: str | None) -> str | None:
    """The username of a Basic Authorization header (Segment puts the write key there)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed Basic Authorization header") from None
    return decoded.partition(":")[0]


def check_write_key(candidate: str | None, keys: tuple[Secret, ...]) -> str:
    """The candidate when it is one of the configured keys, else Unauthorized."""
    if not candidate:
        raise Unauthorized("a write key is required (Basic username or writeKey)")
    given = candidate.encode()
    matched = False
    for key in keys:  # no early exit: the time taken does not say which key came close
        matched |= hmac.compare_digest(given, key.reveal().encode())
    if not matched:
        raise Unauthorized("write key is not valid")
    return candidate


def check_signature(signature: str | None, raw_body: bytes, document: Any, secret: Secret) -> None:
    """Verify Segment's X-Signature: hex HMAC-SHA1 of JSON.stringify(body), or of its first item.

    Classic Webhooks sign the whole body; Webhooks (Actions) batches sign only the first
    event's data, which is the first element of the JSON array they send.
    """
    if not signature:
        raise Unauthorized("X-Signature is required")
    given = signature.strip().lower().encode()
    key = secret.reveal().encode()
    candidates: list[bytes] = []
    if isinstance(document, dict):
        candidates.append(raw_body)  # Segment sends exactly the bytes it signed
        candidates.append(js_stringify(document))
    elif isinstance(document, list) and document:
        candidates.append(js_stringify(document[0]))
    for signed in candidates:
        expected = hmac.new(key, signed, hashlib.sha1).hexdigest().encode()
        if hmac.compare_digest(given, expected):
            return
    raise Unauthorized("X-Signature does not match")


def js_stringify(value: Any) -> bytes:
    """JavaScript's JSON.stringify of a parsed JSON value, as UTF-8 (what Segment signs)."""
    return json.dumps(
        _js_numbers(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "surrogatepass")


def _js_numbers(value: Any) -> Any:
    # JSON.stringify writes 1.0 as 1: JavaScript has one number type.
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _js_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_js_numbers(v) for v in value]
    return value
