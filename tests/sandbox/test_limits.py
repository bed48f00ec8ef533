"""The 40-per-second rate limit (429) and the 20-in-flight limit (503), on and off."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from sandbox.limits import InFlight, RateLimiter

RATE_LIMITED = {
    "code": 429,
    "message": "Your request rate has exceeded our rate limit.",
    "param": None,
}


def _burst(api: httpx.Client, count: int) -> tuple[list[httpx.Response], float]:
    started = time.monotonic()
    responses = [api.get("/ping") for _ in range(count)]
    return responses, time.monotonic() - started


def test_41_quick_requests_meet_the_default_limit(api: httpx.Client, control: httpx.Client) -> None:
    for _ in range(3):  # a busy box may stretch one burst past the window; try again
        control.post("/reset")
        control.post("/faults", json={"rate_limit": 40})
        responses, elapsed = _burst(api, 41)
        if elapsed < 1.0:
            break
    assert elapsed < 1.0, "the burst was too slow to test a 1 s window"
    limited = [r for r in responses if r.status_code == 429]
    assert len(limited) >= 1
    assert limited[0].json() == RATE_LIMITED
    assert sum(r.status_code == 200 for r in responses) == 40


def test_with_the_limit_off_no_request_is_refused(api: httpx.Client, control: httpx.Client) -> None:
    control.post("/faults", json={"rate_limit": 0})
    responses, _ = _burst(api, 60)
    assert {r.status_code for r in responses} == {200}


def test_retry_after_is_sent_when_configured(api: httpx.Client, control: httpx.Client) -> None:
    control.post("/faults", json={"rate_limit": 1, "retry_after": 1})
    assert api.get("/ping").status_code == 200
    refused = api.get("/ping")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"


def test_injected_429_carries_retry_after_when_configured(
    api: httpx.Client, control: httpx.Client
) -> None:
    control.post("/faults", json={"error_rates": {"429": 1.0}, "retry_after": 2.5})
    refused = api.get("/ping")
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "3")  # whole seconds


def test_the_window_slides() -> None:
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.allow("k") and limiter.allow("k")
    assert not limiter.allow("k")
    assert limiter.allow("other-key")
    now[0] = 0.5
    assert not limiter.allow("k")
    now[0] = 1.01
    assert limiter.allow("k")


def test_requests_count_when_they_arrived_even_when_read_out_of_order() -> None:
    limiter = RateLimiter(2, clock=lambda: 5.0)
    assert limiter.allow("k", arrived=1.2)
    assert limiter.allow("k", arrived=1.0)  # arrived first, its body was read second
    assert not limiter.allow("k", arrived=1.9)  # 1.0 and 1.2 are still within its second
    assert limiter.allow("k", arrived=2.05)  # 1.0 has left the window; 1.2 and 2.05 are in it
    assert not limiter.allow("k", arrived=2.1)


def test_in_flight_counts_slots() -> None:
    slots = InFlight(2)
    assert slots.acquire() and slots.acquire()
    assert not slots.acquire()
    slots.release()
    assert slots.acquire()
    assert InFlight(0).acquire()  # 0 = off


def _concurrent_pings(url: str, count: int) -> list[int]:
    # Connect first, then release every request at once: on a busy box, thread start-up
    # alone can otherwise spread the requests wider than the injected latency.
    barrier = threading.Barrier(count)

    def one(_: int) -> int:
        with httpx.Client(auth=("sandbox-test-key", ""), timeout=15) as client:
            client.get(url.replace("/v1/ping", "/_sandbox/faults"))  # opens the connection
            barrier.wait(timeout=15)
            return client.get(url).status_code

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_more_than_20_slow_requests_in_flight_get_503(
    sandbox_server: object, control: httpx.Client
) -> None:
    control.post("/faults", json={"max_in_flight": 20, "latency": 1.0})
    statuses = _concurrent_pings(f"{control.base_url.join('/v1/ping')}", 26)
    assert statuses.count(503) >= 1
    assert statuses.count(200) <= 20
    assert set(statuses) <= {200, 503}
    stats = control.get("/stats").json()
    assert stats["in_flight_peak"] <= 20


def test_with_the_parallel_limit_off_slow_requests_all_succeed(control: httpx.Client) -> None:
    control.post("/faults", json={"max_in_flight": 0, "latency": 0.3})
    statuses = _concurrent_pings(f"{control.base_url.join('/v1/ping')}", 26)
    assert statuses == [200] * 26
