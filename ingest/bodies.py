"""Read a request body under hard byte limits, gunzipping as it streams, then parse the JSON.

Limits are enforced while reading: a client announcing or sending more than the cap is cut off,
and a gzip bomb is refused once its output passes the decompressed cap, never held whole.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ingest.errors import InvalidPayload, PayloadTooLarge, UnsupportedEncoding

_GZIP_WBITS = 16 + zlib.MAX_WBITS  # 16+: expect a gzip header and trailer, not raw deflate


async def read_body(
    chunks: AsyncIterator[bytes],
    *,
    content_length: str | None,
    content_encoding: str | None,
    max_raw: int,
    max_decoded: int,
) -> bytes:
    """The body, decompressed if gzip; raise PayloadTooLarge past either cap."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in {"identity", "gzip", "x-gzip", ""}:
        raise UnsupportedEncoding(f"Content-Encoding {encoding[:40]!r} is not supported; use gzip")
    if content_length and content_length.strip().isdigit() and int(content_length) > max_raw:
        raise PayloadTooLarge(f"body is larger than {max_raw} bytes")
    gunzip = _Gunzip(max_decoded) if encoding in {"gzip", "x-gzip"} else None
    raw_size = 0
    parts: list[bytes] = []
    async for chunk in chunks:
        raw_size += len(chunk)
        if raw_size > max_raw:
            raise PayloadTooLarge(f"body is larger than {max_raw} bytes")
        if gunzip is not None:
            gunzip.feed(chunk)
        else:
            parts.append(chunk)
    if gunzip is not None:
        return gunzip.finish()
    body = b"".join(parts)
    if len(body) > max_decoded:
        raise PayloadTooLarge(f"body is larger than {max_decoded} bytes")
    return body


class _Gunzip:
    """Incremental gzip decoder that never produces more than `cap` bytes."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.size = 0
        self.parts: list[bytes] = []
        self.decoder = zlib.decompressobj(_GZIP_WBITS)

    def feed(self, data: bytes) -> None:
        while data:
            try:
                # max_length bounds the output of this one call: the rest waits in
                # unconsumed_tail, so memory never exceeds the cap by more than a byte.
                out = self.decoder.decompress(data, self.cap - self.size + 1)
            except zlib.error:
                raise InvalidPayload("body is not valid gzip") from None
            self.size += len(out)
            if self.size > self.cap:
                raise PayloadTooLarge(f"decompressed body is larger than {self.cap} bytes")
            self.parts.append(out)
            data = self.decoder.unconsumed_tail
            if self.decoder.eof and self.decoder.unused_data:
                # A second gzip member follows (concatenated streams are valid gzip).
                data = self.decoder.unused_data
                self.decoder = zlib.decompressobj(_GZIP_WBITS)

    def finish(self) -> bytes:
        if not self.decoder.eof:
            raise InvalidPayload("gzip body is truncated")
        return b"".join(self.parts)


def parse_json(body: bytes) -> Any:
    """The decoded JSON document; InvalidPayload when the bytes are not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"body is not valid JSON: {exc.msg}") from None
