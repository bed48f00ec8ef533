"""Why the ingest refused a request, as types: each carries the HTTP status the client must see.

They subclass `cmrelay.errors.RelayError`; the app turns every one into a JSON answer, so bad
input never surfaces as a 500 or a traceback.
"""

from __future__ import annotations

from typing import Any

from cmrelay.errors import RelayError


class IngestRejection(RelayError):  # noqa: N818 - named for what the client sees
    """The request cannot be accepted as sent: the client must change it (4xx)."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}

    def body(self) -> dict[str, Any]:
        """The JSON answer: what was wrong and, when known, which fields."""
        out: dict[str, Any] = {"success": False, "code": self.code, "message": self.message}
        if self.fields:
            out["fields"] = self.fields
        return out


class InvalidPayload(IngestRejection):
    """Not JSON, not the expected shape, or a field fails the Segment spec (400)."""

    code = "invalid_payload"


class PayloadTooLarge(IngestRejection):
    """The body, its decompressed form, the event or the batch is over a limit (413)."""

    status = 413
    code = "payload_too_large"


class UnsupportedEncoding(IngestRejection):
    """A Content-Encoding other than gzip or identity (415)."""

    status = 415
    code = "unsupported_encoding"


class Unauthorized(IngestRejection):
    """No valid write key, or a bad X-Signature (401)."""

    status = 401
    code = "unauthorized"


class QueueUnavailable(RelayError):  # noqa: N818 - named for what the client sees
    """Redis did not acknowledge the write, or the queue is above its high-water mark (503)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
