"""Pagination of the dead-letter list: which rows a page shows, its totals line, prev/next links.

Pure functions: the web handler counts and lists, these only do the arithmetic and the words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from cmrelay.errors import InvalidQueryError

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
EN_DASH = "\u2013"  # a range of rows, as in print


def page_size(text: str | None) -> int:
    """The page size asked for: one of PAGE_SIZES (default 50); anything else is refused."""
    raw = (text or "").strip()
    if not raw:
        return DEFAULT_PAGE_SIZE
    if not (raw.isascii() and raw.isdigit()) or int(raw) not in PAGE_SIZES:
        choices = ", ".join(str(n) for n in PAGE_SIZES)
        raise InvalidQueryError(f"page size must be one of {choices}")
    return int(raw)


@dataclass(frozen=True)
class Window:
    """One page of `total` matches: rows offset+1 .. offset+limit (1-based, as people count)."""

    offset: int
    limit: int
    total: int

    @property
    def first(self) -> int:
        """Number of the first row shown, 0 when the page is empty."""
        return self.offset + 1 if self.offset < self.total else 0

    @property
    def last(self) -> int:
        """Number of the last row shown, 0 when the page is empty."""
        return min(self.offset + self.limit, self.total) if self.first else 0

    @property
    def prev_offset(self) -> int | None:
        """Offset of the previous page (past the end: the last page), None on the first."""
        if self.offset <= 0:
            return None
        if self.offset >= self.total:
            return max(0, (self.total - 1) // self.limit * self.limit)
        return max(0, self.offset - self.limit)

    @property
    def next_offset(self) -> int | None:
        """Offset of the next page, None on the last."""
        after = self.offset + self.limit
        return after if after < self.total else None


def totals_line(window: Window, dead: int, replayed: int) -> str:
    """E.g. "1-50 of 3,048 matching · 47 dead, 3,001 replayed" (with an en dash)."""
    shown = f"{window.first:,}{EN_DASH}{window.last:,} of " if window.first else "none shown of "
    if window.total == 0:
        shown = ""
    return f"{shown}{window.total:,} matching · {dead:,} dead, {replayed:,} replayed"


def page_url(params: Mapping[str, str], limit: int, offset: int) -> str:
    """The list URL for one page, keeping the filters (offset and a default size left out)."""
    query = dict(params)
    if limit != DEFAULT_PAGE_SIZE:
        query["limit"] = str(limit)
    if offset:
        query["offset"] = str(offset)
    return "/?" + urlencode(query) if query else "/"
