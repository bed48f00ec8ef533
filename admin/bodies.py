"""Request bodies under a hard cap: refused by Content-Length first, then while streaming.

Reading the whole body before checking its size let one unauthenticated POST hold hundreds of
megabytes; here no more than `limit` bytes are ever held, whatever the client announces.
"""

from __future__ import annotations

from starlette.requests import Request

from cmrelay.errors import InvalidQueryError

LOGIN_MAX = 4096  # a login form holds the token and nothing else


class BodyTooLarge(InvalidQueryError):  # noqa: N818 - named for what the client sees
    """The request body is over its cap (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, or BodyTooLarge as soon as it is known to be over `limit` bytes."""
    announced = request.headers.get("content-length", "").strip()
    if announced.isascii() and announced.isdigit() and int(announced) > limit:
        raise BodyTooLarge(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # chunked, or a Content-Length that lied: stop reading here
            raise BodyTooLarge(limit)
        parts.append(chunk)
    return b"".join(parts)
