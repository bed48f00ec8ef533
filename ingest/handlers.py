"""The endpoints: authenticate, read, validate, queue, answer. Each returns (status, body).

Errors travel as the types in ingest/errors.py; app.py turns them into answers and metrics.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any, NamedTuple

from marshmallow import ValidationError
from starlette.requests import Request

from cmrelay.envelope import (
    ORIGIN_ACTIONS,
    ORIGIN_TRACKING_API,
    ORIGIN_WEBHOOK,
    Envelope,
    source_for_write_key,
)
from cmrelay.settings import Settings
from ingest import actions
from ingest.auth import basic_username, check_signature, check_write_key
from ingest.bodies import parse_json, read_body
from ingest.errors import IngestRejection, InvalidPayload, PayloadTooLarge, Unauthorized
from ingest.events import (
    MAX_BATCH_ITEMS,
    MAX_EVENT_BYTES,
    check_size,
    check_structure,
    complete,
    event_type,
    iso_ms,
    prepare,
    with_batch_defaults,
)
from ingest.metrics import IngestMetrics
from ingest.queue import QueueWriter
from ingest.schemas import IsoDateTime


class Channel(NamedTuple):
    """Where a request came in: metrics label, envelope origin and envelope source."""

    endpoint: str
    origin: str
    source: str


_WEBHOOK = Channel("webhook", ORIGIN_WEBHOOK, "webhook")
_ACTIONS = Channel("chartmogul", ORIGIN_ACTIONS, "actions")
MAX_WEBHOOK_ITEMS = 4000  # Webhooks (Actions) batches hold at most 4,000 events.
KEY_REQUIRED = "a write key is required (Basic username or ?writeKey=)"
WEBHOOK_ARRAY_NEEDS_KEY = (
    "a JSON array on /webhook needs a write key as well as X-Signature (Segment signs only the "
    "first event of a batch): append ?writeKey=<SEGMENT_WRITE_KEY> to the webhook URL in Segment "
    "or send it as the Basic username; or turn batching off"
)
Answer = tuple[int, dict[str, Any]]
_SENT_AT = IsoDateTime()
log = logging.getLogger("cmrelay.ingest")


class Ingest:
    """The state every endpoint shares: settings, the queue writer and the metrics."""

    def __init__(self, settings: Settings, queue: QueueWriter, metrics: IngestMetrics) -> None:
        self.settings = settings
        self.queue = queue
        self.metrics = metrics

    # --- Segment HTTP Tracking API -------------------------------------------------------
    async def single(self, request: Request, kind: str) -> Answer:
        """POST /v1/<type>: one event; any invalid field is a 400 naming it."""
        header_key = self._header_key(request)
        document = await self._document(request, max_decoded=MAX_EVENT_BYTES)
        if not isinstance(document, dict):
            raise InvalidPayload("body must be a JSON object")
        source = self._tracking_source(header_key, document)
        check_structure(document)
        received = datetime.now(UTC)
        event = prepare({**document, "type": kind}, kind, received)
        channel = Channel(kind, ORIGIN_TRACKING_API, source)
        return await self._queue_one(channel, kind, event, received)

    async def batch(self, request: Request) -> Answer:
        """POST /v1/batch: valid items are queued; invalid ones are listed in a 200."""
        header_key = self._header_key(request)
        document = await self._document(request, max_decoded=self.settings.ingest_max_decompressed)
        if not isinstance(document, dict) or not isinstance(document.get("batch"), list):
            raise InvalidPayload(
                "body must be an object with a `batch` list", fields={"batch": ["Not a list."]}
            )
        source = self._tracking_source(header_key, document)
        items: list[Any] = document["batch"]
        if len(items) > MAX_BATCH_ITEMS:
            raise PayloadTooLarge(f"a batch holds at most {MAX_BATCH_ITEMS} events")
        check_structure({k: document.get(k) for k in ("context", "integrations")})  # in every item
        sent_at = _batch_sent_at(document.get("sentAt"))
        received = datetime.now(UTC)
        channel = Channel("batch", ORIGIN_TRACKING_API, source)
        return await self._queue_many(channel, items, received, document, sent_at)

    # --- Segment Webhooks destination ----------------------------------------------------
    async def webhook(self, request: Request) -> Answer:
        """POST /webhook: one event or a JSON array (Webhooks (Actions) batching)."""
        secret = self.settings.segment_shared_secret
        vouched = self._vouched(request)  # a wrong key is refused here, before the body
        if not secret and not vouched:
            raise Unauthorized(KEY_REQUIRED)
        raw = await self._raw(request, max_decoded=self.settings.ingest_max_decompressed)
        document = parse_json(raw)
        if secret:
            check_signature(request.headers.get("x-signature"), raw, document, secret)
        received = datetime.now(UTC)
        if isinstance(document, list):
            if not vouched:
                # Webhooks (Actions) signs only the first event of a batch: the signature cannot
                # vouch for the rest, so anyone holding one signed event could append others.
                raise Unauthorized(WEBHOOK_ARRAY_NEEDS_KEY)
            if len(document) > MAX_WEBHOOK_ITEMS:
                raise PayloadTooLarge(f"a webhook batch holds at most {MAX_WEBHOOK_ITEMS} events")
            return await self._queue_many(_WEBHOOK, document, received, {}, None)
        kind = event_type(document)
        check_size(document)
        event = prepare(document, kind, received, from_segment=True)
        return await self._queue_one(_WEBHOOK, kind, event, received)

    # --- ChartMogul (Actions) destination ------------------------------------------------
    async def chartmogul(self, request: Request) -> Answer:
        """POST /chartmogul: a flat "Send Contact"/"Send Customer" payload."""
        self._query_or_header_key(request)
        document = await self._document(request, max_decoded=MAX_EVENT_BYTES)
        if actions.is_connection_test(document):
            return 200, {"success": True, "queued": 0}
        check_structure(document)
        received = datetime.now(UTC)
        event = complete(actions.to_segment_event(document), received, from_segment=True)
        return await self._queue_one(_ACTIONS, event["type"], event, received)

    # --- shared steps ---------------------------------------------------------------------
    async def _raw(self, request: Request, *, max_decoded: int) -> bytes:
        return await read_body(
            request.stream(),
            content_length=request.headers.get("content-length"),
            content_encoding=request.headers.get("content-encoding"),
            max_raw=self.settings.ingest_max_body,
            max_decoded=min(max_decoded, self.settings.ingest_max_decompressed),
        )

    async def _document(self, request: Request, *, max_decoded: int) -> Any:
        return parse_json(await self._raw(request, max_decoded=max_decoded))

    def _header_key(self, request: Request) -> str | None:
        """A Basic write key, checked before the body is read, so bad keys cost nothing."""
        key = basic_username(request.headers.get("authorization"))
        if key is not None and not self.settings.auth_disabled:
            check_write_key(key, self.settings.segment_write_keys)
        return key

    def _tracking_source(self, header_key: str | None, document: dict[str, Any]) -> str:
        body_key = document.get("writeKey")
        key = header_key or (body_key if isinstance(body_key, str) else None)
        if not self.settings.auth_disabled and header_key is None:
            check_write_key(key, self.settings.segment_write_keys)
        return source_for_write_key(key or "")

    def _query_or_header_key(self, request: Request) -> None:
        """Destinations without a signature carry the write key as Basic or ?writeKey=."""
        if not self._vouched(request):
            raise Unauthorized(KEY_REQUIRED)

    def _vouched(self, request: Request) -> bool:
        """True when a valid write key came as Basic or ?writeKey= (or auth is off); False when
        none came; Unauthorized when one came and is wrong."""
        if self.settings.auth_disabled:
            return True
        if self._header_key(request) is not None:
            return True
        key = request.query_params.get("writeKey")
        if key is None:
            return False
        check_write_key(key, self.settings.segment_write_keys)
        return True

    async def _queue_one(
        self,
        channel: Channel,
        kind: str,
        event: dict[str, Any] | None,
        received: datetime,
    ) -> Answer:
        if event is None:
            self.metrics.ignored.labels(kind).inc()
            return 200, {"success": True, "queued": 0, "ignored": 1}
        envelope = Envelope(channel.source, channel.origin, iso_ms(received), event)
        await self.queue.push([envelope.to_bytes()])
        self.metrics.queued.labels(channel.endpoint).inc()
        return 200, {"success": True, "queued": 1, "ignored": 0}

    async def _queue_many(
        self,
        channel: Channel,
        items: list[Any],
        received: datetime,
        defaults: dict[str, Any],
        sent_at: datetime | None,
    ) -> Answer:
        stamp = iso_ms(received)
        from_segment = channel.origin != ORIGIN_TRACKING_API
        envelopes: list[bytes] = []
        ignored: Counter[str] = Counter()
        rejected: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                kind = event_type(item)
                check_size(item)
                merged = with_batch_defaults(item, defaults)
                event = prepare(merged, kind, received, sent_at, from_segment=from_segment)
                if event is None:
                    ignored[kind] += 1
                else:
                    envelope = Envelope(channel.source, channel.origin, stamp, event)
                    envelopes.append(envelope.to_bytes())
            except IngestRejection as exc:
                rejected.append(_rejection(index, exc))
                self.metrics.rejected.labels(channel.endpoint, exc.code).inc()
            except Exception as exc:
                # Our bug, triggered by this item: answering 503 would make Segment retry the
                # whole batch forever, so the good items would never be queued. Refuse this one.
                log.exception("ingest %s: item %d: unexpected %s", channel.endpoint, index,
                              type(exc).__name__)  # fmt: skip
                reason = f"the relay could not process this event ({type(exc).__name__})"
                rejected.append({"index": index, "reason": reason})
                self.metrics.rejected.labels(channel.endpoint, "internal_error").inc()
        await self.queue.push(envelopes)
        self.metrics.queued.labels(channel.endpoint).inc(len(envelopes))
        for kind, count in ignored.items():
            self.metrics.ignored.labels(kind).inc(count)
        body: dict[str, Any] = {
            "success": True,
            "queued": len(envelopes),
            "ignored": sum(ignored.values()),
        }
        if rejected:
            body["rejected"] = rejected
        return 200, body


def _rejection(index: int, exc: IngestRejection) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index, "reason": exc.message}
    if exc.fields:
        out["fields"] = exc.fields
    return out


def _batch_sent_at(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        moment: datetime = _SENT_AT.deserialize(value)
        return moment
    except ValidationError:
        raise InvalidPayload(
            "sentAt is not an ISO-8601 date-time", fields={"sentAt": ["Invalid."]}
        ) from None
