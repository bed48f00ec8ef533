from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import pytest

from ingest.bodies import parse_json, read_body
from ingest.errors import InvalidPayload, PayloadTooLarge, UnsupportedEncoding


async def _chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _read(
    data: bytes, *, encoding: str | None = None, max_raw: int = 10_000, max_decoded: int = 10_000
) -> bytes:
    return asyncio.run(
        read_body(
            _chunks(data),
            content_length=None,
            content_encoding=encoding,
            max_raw=max_raw,
            max_decoded=max_decoded,
        )
    )


def test_plain_body_is_returned_as_sent() -> None:
    assert _read(b'{"a": 1}') == b'{"a": 1}'


def test_gzip_body_is_decompressed() -> None:
    assert _read(gzip.compress(b'{"a": 1}'), encoding="gzip") == b'{"a": 1}'


def test_concatenated_gzip_members_are_one_body() -> None:
    data = gzip.compress(b'{"a":') + gzip.compress(b" 1}")
    assert _read(data, encoding="gzip") == b'{"a": 1}'


def test_gzip_bomb_is_refused_once_output_passes_the_cap() -> None:
    bomb = gzip.compress(b"0" * 50_000_000)  # ~50 KB on the wire, 50 MB inflated
    with pytest.raises(PayloadTooLarge, match="decompressed"):
        _read(bomb, encoding="gzip", max_raw=len(bomb) + 1, max_decoded=1_000_000)


def test_raw_body_over_the_cap_is_refused_while_streaming() -> None:
    with pytest.raises(PayloadTooLarge):
        _read(b"x" * 20_001, max_raw=20_000, max_decoded=50_000)


def test_announced_length_over_the_cap_is_refused_before_reading() -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body must not be read")
        yield b""  # pragma: no cover

    with pytest.raises(PayloadTooLarge):
        asyncio.run(
            read_body(
                never(), content_length="999999", content_encoding=None, max_raw=10, max_decoded=10
            )
        )


@pytest.mark.parametrize("data", [b"not gzip at all", gzip.compress(b"{}")[:-5], b""])
def test_broken_gzip_is_invalid_payload(data: bytes) -> None:
    with pytest.raises(InvalidPayload):
        _read(data, encoding="gzip")


def test_other_encodings_are_refused() -> None:
    with pytest.raises(UnsupportedEncoding):
        _read(b"{}", encoding="br")


def test_invalid_json_is_invalid_payload() -> None:
    with pytest.raises(InvalidPayload, match="not valid JSON"):
        parse_json(b"{nope")
