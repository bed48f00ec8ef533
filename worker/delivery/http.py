"""HTTP plumbing shared by both delivery clients: the gate, the error taxonomy, secrecy.

The REST API client and the Actions webhook client send every request through `send_gated` and
classify every failure here, so retry, dead-letter and pause decisions cannot drift apart.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from email.utils import parsedate_to_datetime

import httpx

from cmrelay.errors import (
    DeliveryConfigurationError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from cmrelay.masking import Masker
from worker.delivery.contract import RequestGate
from worker.delivery.limiter import refresh_permit

# Every client that sends through `send_gated` installs these: the last check before the wire.
GATE_HOOKS: dict[str, list[Callable[[httpx.Request], object]]] = {"request": [refresh_permit]}

log = logging.getLogger(__name__)


# Segment's actions-core retries 408, 423, 429 and 5xx except 501 (not implemented: no retry
# helps) and 505 (HTTP version not supported: a configuration problem of ours, not a blip).
_RETRYABLE_4XX = frozenset({408, 423, 429})
# 501 Not Implemented cannot change by waiting; 505 (HTTP version) is retried, as actions-core does.
_PERMANENT_5XX = frozenset({501})
_CONFIG_4XX = frozenset({401, 403})
# ChartMogul answers an unknown or deleted data source with "Data source not found" (404) or a
# validation error naming the field (422); both mean the setting is wrong, not the event.
_DATA_SOURCE_PROBLEM = re.compile(
    r"data[ _]source(_uuid)?\W{0,4}\s*(not found|is invalid|invalid|does not exist|doesn't exist"
    r"|can't be blank|must exist)",
    re.IGNORECASE,
)
# Cap on Retry-After we honour: a broken proxy answering "Retry-After: 86400" must not park an
# event past the retry window in one step.
MAX_RETRY_AFTER = 3600.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait per a Retry-After header (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means the same
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def error_for_status(
    status: int,
    body: str,
    *,
    what: str,
    retry_after: float | None = None,
) -> DeliveryError:
    """The delivery error for a non-success HTTP status (`what` names the call, e.g. 'POST /x')."""
    excerpt = body[:2000]
    message = f"{what}: HTTP {status}"
    if status in _CONFIG_4XX:
        hint = "API key rejected" if status == 401 else "access forbidden"
        return DeliveryConfigurationError(f"{message} ({hint})", status=status, body=excerpt)
    if status in (400, 404, 422) and _DATA_SOURCE_PROBLEM.search(body):
        return DeliveryConfigurationError(
            f"{message} (unknown data source: check CHARTMOGUL_DATA_SOURCE_UUID)",
            status=status,
            body=excerpt,
        )
    if 300 <= status < 400:
        return DeliveryConfigurationError(
            f"{message} (redirected: check the base URL)", status=status, body=excerpt
        )
    if status in _RETRYABLE_4XX or (500 <= status < 600 and status not in _PERMANENT_5XX):
        return RetryableDeliveryError(message, status=status, body=excerpt, retry_after=retry_after)
    return PermanentDeliveryError(message, status=status, body=excerpt)


def error_for_transport(exc: httpx.RequestError, *, what: str) -> RetryableDeliveryError:
    """Timeouts and connection failures are always worth another try."""
    if isinstance(exc, httpx.TimeoutException):
        kind = "timed out"
    elif isinstance(exc, httpx.DecodingError):
        kind = "response body could not be decoded"
    else:
        kind = "connection failed"
    # The exception's own text names only the socket error; the request (and its auth header)
    # is deliberately not included.
    return RetryableDeliveryError(f"{what}: {kind} ({type(exc).__name__})")


def error_for_response(
    response: httpx.Response, *, what: str, secrets: Iterable[str]
) -> DeliveryError:
    """Classify a response that is not a success; the body is scrubbed of secrets."""
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    body = Masker(secrets).text(response.text)
    return error_for_status(response.status_code, body, what=what, retry_after=retry_after)


def send_gated(
    gate: RequestGate | None,
    send: Callable[[], httpx.Response],
    *,
    what: str,
    secrets: Iterable[str],
) -> httpx.Response:
    """Run one request holding the gate, report its outcome to the gate; a success or raise."""
    started = time.monotonic()
    with gate.acquire() if gate else contextlib.nullcontext():
        try:
            response = send()
        except httpx.RequestError as exc:  # transport, protocol and content-decoding failures
            if gate:
                gate.observe(None, None)
            log.info("%s failed: %s", what, type(exc).__name__)
            raise error_for_transport(exc, what=what) from None
        if response.is_success:
            if gate:
                gate.observe(response.status_code, None)
            log.debug("%s -> %s in %.3fs", what, response.status_code, time.monotonic() - started)
            return response
        error = error_for_response(response, what=what, secrets=secrets)
        if gate:
            gate.observe(response.status_code, getattr(error, "retry_after", None))
    log.info("%s -> %s (%s)", what, response.status_code, error.error_class)
    raise error
