"""Cursor pagination over creation-ordered sequence numbers, in O(page) not O(store)."""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_right
from collections.abc import Callable, Sequence

MAX_PER_PAGE = 200  # ChartMogul: default and maximum page size


class BadCursorError(ValueError):
    """A cursor this sandbox did not issue."""


def encode_cursor(seq: int) -> str:
    """An opaque cursor, base64 like ChartMogul's ("&<id>")."""
    return base64.b64encode(f"&{seq}".encode()).decode()


def decode_cursor(cursor: str | None) -> int | None:
    """The sequence number after which the next page starts; None for the first page."""
    if not cursor:
        return None
    try:
        text = base64.b64decode(cursor, validate=True).decode()
        if not text.startswith("&"):
            raise BadCursorError(cursor)
        return int(text[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursorError(cursor) from None


def per_page(raw: str | None) -> int:
    """The page size: default and cap 200, like ChartMogul; ValueError for garbage."""
    if raw is None or raw == "":
        return MAX_PER_PAGE
    value = int(raw)  # ValueError reaches the caller as a 400
    if value < 1:
        raise ValueError("per_page must be positive")
    return min(value, MAX_PER_PAGE)


def walk(
    seqs: Sequence[int],
    after: int | None,
    size: int,
    keep: Callable[[int], bool] | None = None,
) -> tuple[list[int], bool]:
    """Up to `size` sequence numbers after `after` that pass `keep`, and whether more follow."""
    start = 0 if after is None else bisect_right(seqs, after)
    page: list[int] = []
    for index in range(start, len(seqs)):
        seq = seqs[index]
        if keep is not None and not keep(seq):
            continue
        if len(page) == size:
            return page, True
        page.append(seq)
    return page, False
