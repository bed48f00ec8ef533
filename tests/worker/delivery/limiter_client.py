"""A separate process hammering the shared gate; records grant/release times (Redis clock, us).

Run as: python -m tests.worker.delivery.limiter_client
    URL PREFIX RATE MAX_IN_FLIGHT SECONDS HOLD OUT_KEY
"""

from __future__ import annotations

import sys
import time

import redis

from cmrelay.keys import Keys
from cmrelay.lua import Scripts
from worker.delivery.limiter import RedisRequestGate


def main(argv: list[str]) -> None:
    url, prefix, rate, max_in_flight, seconds, hold, out_key = argv
    client = redis.Redis.from_url(url)
    gate = RedisRequestGate(
        Scripts(client, Keys(prefix)), rate=float(rate), max_in_flight=int(max_in_flight),
        slot_ttl=10.0,
    )  # fmt: skip
    while not client.exists(out_key + ":go"):  # start together
        time.sleep(0.005)
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:
        grant = gate.acquire_grant()
        if float(hold):
            time.sleep(float(hold))  # the "request" we hold the slot for
        sec, us = client.time()
        client.rpush(out_key, f"{grant.granted_at_us},{sec * 1_000_000 + us}")
        gate.release(grant)


if __name__ == "__main__":
    main(sys.argv[1:])
