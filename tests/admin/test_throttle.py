"""Guessing the admin token, against two real admin servers sharing one Redis (issue 12 #5):
the count is per client address and shared, parallel guesses cannot slip past it, and while it
lasts even the right token gets 429. A token too short to be secret stops the admin at start."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace

import httpx
import pytest

from admin.server import uvicorn_config
from cmrelay.redis_server import free_port
from cmrelay.settings import Settings
from tests.servers import serve_in_thread
from tests.support.processes import wait_for

from .conftest import TOKEN

MAX_FAILURES = 5
WINDOW = 2.0
# Two client addresses on loopback (all of 127/8 is local): guesser and operator.
ATTACKER = "127.0.0.2"
OPERATOR = "127.0.0.3"


@pytest.fixture
def two_admins(admin_settings: Settings) -> Iterator[list[str]]:
    """Two admin processes' worth of servers over the same Redis and prefix."""
    settings = replace(admin_settings, admin_max_failures=MAX_FAILURES, admin_failure_window=WINDOW)
    with ExitStack() as stack:
        configs = [uvicorn_config(settings, "127.0.0.1", free_port()) for _ in range(2)]
        yield [stack.enter_context(serve_in_thread(c, "admin")) for c in configs]


def client(source: str, headers: dict[str, str] | None = None) -> httpx.Client:
    """An HTTP client whose connections come from `source`."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(transport=transport, headers=headers, timeout=10)


def login(url: str, token: str, source: str, headers: dict[str, str] | None = None) -> int:
    with client(source, headers) as http:
        return http.post(url + "/login", data={"token": token}).status_code


def bearer(url: str, token: str, source: str) -> httpx.Response:
    with client(source, {"Authorization": f"Bearer {token}"}) as http:
        return http.get(url + "/api/dlq/stats")


def test_parallel_guesses_on_two_admins_get_at_most_the_limit_of_answers(
    two_admins: list[str],
) -> None:
    def guess(n: int) -> int:
        url = two_admins[n % 2]
        if n % 3:
            return login(url, f"guess-{n}", ATTACKER)
        return bearer(url, f"guess-{n}", ATTACKER).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = Counter(pool.map(guess, range(60)))
    assert statuses == {401: MAX_FAILURES, 429: 60 - MAX_FAILURES}, statuses
    # While throttled, the right token tells the attacker nothing either, on either server.
    for url in two_admins:
        assert login(url, TOKEN, ATTACKER) == 429
        refused = bearer(url, TOKEN, ATTACKER)
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= WINDOW
        # Another address is not held back by the attacker's guesses.
        assert login(url, TOKEN, OPERATOR) == 303
        assert bearer(url, TOKEN, OPERATOR).status_code == 200


def test_the_throttle_ends_with_its_window(two_admins: list[str]) -> None:
    for n in range(MAX_FAILURES + 1):
        login(two_admins[n % 2], "wrong", ATTACKER)
    assert login(two_admins[0], TOKEN, ATTACKER) == 429
    wait_for(lambda: login(two_admins[1], TOKEN, ATTACKER) == 303, 10, "the window to end")


def test_requests_without_a_token_are_not_counted_as_guesses(two_admins: list[str]) -> None:
    with client(ATTACKER) as http:
        for _ in range(MAX_FAILURES * 2):
            assert http.get(two_admins[0] + "/api/dlq/stats").status_code == 401
    assert bearer(two_admins[1], TOKEN, ATTACKER).status_code == 200


def test_a_forwarded_for_header_does_not_buy_fresh_guesses(two_admins: list[str]) -> None:
    for n in range(MAX_FAILURES):
        assert login(two_admins[0], "wrong", ATTACKER, {"X-Forwarded-For": f"10.0.0.{n}"}) == 401
    spoofed = {"X-Forwarded-For": "10.9.9.9"}
    assert login(two_admins[1], "wrong", ATTACKER, spoofed) == 429
    assert login(two_admins[1], TOKEN, ATTACKER, spoofed) == 429


@pytest.mark.parametrize("token", ["s3cr3t", "fifteen-chars15"])
def test_the_admin_refuses_to_start_with_a_short_token(redis_url: str, token: str) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "ADMIN_PORT": "1", "ADMIN_TOKEN": token}
    done = subprocess.run(
        [sys.executable, "-m", "cmrelay_cli", "admin"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "ADMIN_TOKEN is too short" in line and token not in line
