"""The queue message: the one contract between the ingest (writer) and the workers (reader).

Each accepted Segment call becomes one envelope, serialised as compact JSON and pushed onto the
ingest list (`keys.ingest_queue`). Fields:

    v            int   ENVELOPE_VERSION; a reader refuses versions it does not know.
    source       str   Who sent it, without the secret: "wk_" + 16 hex of sha256(write key),
                       "webhook" (Segment Webhooks destination) or "actions" (ChartMogul Actions
                       payload). Dedupe is scoped by this value.
    origin       str   The ingest route: "tracking-api", "webhook", "chartmogul-actions", or
                       "backfill" (`cmrelay backfill`, history read from files).
    received_at  str   ISO-8601 UTC time the ingest accepted it, with milliseconds.
    event        dict  A Segment event (spec shape: type, messageId, timestamp, userId, ...),
                       already validated, with messageId and timestamp always present.
    replay       bool  Optional, only written when true: a DLQ replay, which skips the dedupe
                       check at accept (the DLQ itself makes sure an entry is replayed once).

The write key itself is never stored: Redis contents show up in DLQ views and dumps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

ENVELOPE_VERSION = 1

ORIGIN_TRACKING_API = "tracking-api"
ORIGIN_WEBHOOK = "webhook"
ORIGIN_ACTIONS = "chartmogul-actions"
ORIGIN_BACKFILL = "backfill"


class EnvelopeError(ValueError):
    """The bytes on the queue are not an envelope this version understands."""


def source_for_write_key(write_key: str) -> str:
    """A stable, non-reversible name for a write key, safe to store and to log."""
    return "wk_" + hashlib.sha256(write_key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Envelope:
    """One accepted Segment call, as it travels from the ingest to the workers."""

    source: str
    origin: str
    received_at: str
    event: dict[str, Any]
    v: int = ENVELOPE_VERSION
    replay: bool = False

    @property
    def message_id(self) -> str:
        """The Segment messageId (always present: the ingest assigns one when absent)."""
        return str(self.event["messageId"])

    def to_bytes(self) -> bytes:
        """Compact JSON, as stored on the queue."""
        data: dict[str, Any] = {
            "v": self.v,
            "source": self.source,
            "origin": self.origin,
            "received_at": self.received_at,
            "event": self.event,
        }
        if self.replay:
            data["replay"] = True
        return orjson.dumps(data)

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> Envelope:
        """Parse and check one queued envelope."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise EnvelopeError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise EnvelopeError("not a JSON object")
        if data.get("v") != ENVELOPE_VERSION:
            raise EnvelopeError(f"unknown envelope version {data.get('v')!r}")
        event = data.get("event")
        if not isinstance(event, dict) or "messageId" not in event:
            raise EnvelopeError("envelope has no event with a messageId")
        return cls(
            source=str(data.get("source", "")),
            origin=str(data.get("origin", "")),
            received_at=str(data.get("received_at", "")),
            event=event,
            replay=data.get("replay") is True,
        )
