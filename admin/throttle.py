"""Wrong admin tokens, counted per client address in Redis: past ADMIN_MAX_FAILURES in one
ADMIN_FAILURE_WINDOW, that address gets 429 until the window ends, right token or not (so a
guess made while throttled tells nothing). At most ADMIN_MAX_FAILURES guesses per window get an
answer that says whether they were right, however many are sent in parallel.

In Redis rather than in memory so that every admin process (and host) shares one count: an
attacker cannot multiply their guesses by the number of processes behind a load balancer. The
window is fixed, opened by the first failure, so one key per guessing address, gone with its TTL.
"""

from __future__ import annotations

import redis
from starlette.requests import Request

from cmrelay.keys import Keys

MIN_TOKEN_LENGTH = 16  # characters; `openssl rand -hex 16` gives 32


def client_address(request: Request) -> str:
    """The TCP peer's address (admin/server.py turns uvicorn's proxy headers off)."""
    return request.client.host if request.client else "unknown"


def throttled_message(wait: int) -> str:
    """What a throttled client is told (the same for the page and the API)."""
    return f"too many wrong admin tokens from your address: try again in {wait} s"


class Throttle:
    """The shared failure count for one relay's admin."""

    def __init__(self, client: redis.Redis, keys: Keys, max_failures: int, window: float) -> None:
        self.client = client
        self.keys = keys
        self.max_failures = max_failures
        self.window = max(1, round(window))

    def wait_seconds(self, address: str) -> int:
        """0 when `address` may use the right token; else the seconds until its window ends."""
        key = self.keys.admin_failures(address)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            count, ttl = pipe.execute()
        if count is None or int(count) < self.max_failures:
            return 0
        return max(1, int(ttl))

    def failed(self, address: str) -> int:
        """Count one wrong token from `address`; return 0 while it may still get its 401, else
        the seconds to wait (the first failure opens the window)."""
        key = self.keys.admin_failures(address)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=self.window, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
            _, count, ttl = pipe.execute()
        # Counted before answering, atomically: parallel guesses cannot all slip under the limit.
        return 0 if int(count) <= self.max_failures else max(1, int(ttl))
