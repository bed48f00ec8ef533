"""Header limits and slow-client deadlines of the real ingest server, over bare sockets (issue 12
#3). Every hostile send is bounded in bytes and seconds; the deadlines are shortened per test
(the server runs in this process and reads them when it arms a timer)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import redis

import ingest.protocol
from ingest.protocol import MAX_HEADER_BYTES, MAX_HEADERS
from tests.ingest.conftest import WRITE_KEY, queued
from tests.support.raw_http import Exchange, connect, send_until_answered

BASIC = "Authorization: Basic " + httpx.BasicAuth(WRITE_KEY, "")._auth_header.split(" ", 1)[1]
BODY = b'{"userId":"u1","traits":{"plan":"pro"}}'


def post(extra_headers: str = "", body: bytes = BODY) -> bytes:
    return (
        f"POST /v1/identify HTTP/1.1\r\nHost: ingest\r\n{BASIC}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra_headers}\r\n"
    ).encode() + body


@pytest.fixture
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(ingest.protocol, "HEADER_TIMEOUT", 0.6)
    monkeypatch.setattr(ingest.protocol, "BODY_TIMEOUT", 0.8)
    yield


# --- header limits -----------------------------------------------------------------------------
def test_an_endless_header_is_cut_off_with_a_431(ingest_url: str) -> None:
    head = b"POST /v1/identify HTTP/1.1\r\nHost: ingest\r\nX-Big: "
    got = send_until_answered(ingest_url, head, b"a" * 65536, max_bytes=8_000_000, seconds=10)
    assert got.status == 431, got
    assert b'"code":"headers_too_large"' in got.response and got.closed
    assert got.sent < 1_000_000  # refused near the 32 KiB limit, not after 8 MB


def test_four_unfinished_huge_headers_are_each_refused_early(ingest_url: str) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: ingest\r\nCookie: "
    sends: list[Exchange] = []
    for _ in range(4):
        sends.append(
            send_until_answered(ingest_url, head, b"c" * 65536, max_bytes=20_000_000, seconds=10)
        )
    assert [s.status for s in sends] == [431] * 4
    assert sum(s.sent for s in sends) < 4_000_000
    started = time.monotonic()
    assert httpx.get(ingest_url + "/health", timeout=5).status_code == 200
    assert time.monotonic() - started < 1.0


def test_too_many_headers_is_a_431(ingest_url: str) -> None:
    many = "".join(f"X-H{n}: v\r\n" for n in range(MAX_HEADERS + 1))
    got = send_until_answered(ingest_url, post(many), b"", max_bytes=1, seconds=5)
    assert got.status == 431 and got.closed, got


def test_headers_that_end_in_the_same_chunk_still_count(ingest_url: str) -> None:
    # One write, headers complete: the limit holds without the unfinished-header count.
    big = f"X-Big: {'b' * (MAX_HEADER_BYTES + 100)}\r\n"
    got = send_until_answered(ingest_url, post(big), b"", max_bytes=1, seconds=5)
    assert got.status == 431, got


def test_a_real_request_with_large_but_legal_headers_is_answered(
    ingest_url: str, redis_client: redis.Redis
) -> None:
    extra = f"Cookie: {'k' * 20_000}\r\n" + "".join(f"X-H{n}: v\r\n" for n in range(80))
    got = send_until_answered(ingest_url, post(extra + "Connection: close\r\n"), b"", max_bytes=1,
                              seconds=5)  # fmt: skip
    assert got.status == 200, got
    assert len(queued(redis_client)) == 1


# --- slow clients ------------------------------------------------------------------------------
@pytest.mark.usefixtures("short_deadlines")
def test_headers_sent_a_byte_at_a_time_time_out_with_a_408(ingest_url: str) -> None:
    head = b"POST /v1/identify HTTP/1.1\r\nHost: ingest\r\n"
    got = send_until_answered(ingest_url, head, b"X", max_bytes=10_000, seconds=8, pause=0.05)
    assert got.status == 408 and got.closed, got
    assert got.seconds < 4


@pytest.mark.usefixtures("short_deadlines")
def test_a_connection_that_never_sends_is_closed(ingest_url: str) -> None:
    started = time.monotonic()
    with connect(ingest_url) as sock:
        sock.settimeout(5)
        assert sock.recv(100) == b""  # closed by the server, not by our timeout
    assert time.monotonic() - started < 4


@pytest.mark.usefixtures("short_deadlines")
def test_a_body_sent_a_byte_at_a_time_is_cut_off_and_nothing_is_queued(
    ingest_url: str, redis_client: redis.Redis
) -> None:
    body = b'{"userId":"slow","traits":{"pad":"' + b"p" * 500 + b'"}}'
    head = post(body=body)[: -len(body)]  # headers announcing the body, then a trickle
    got = send_until_answered(ingest_url, head, b" ", max_bytes=10_000, seconds=8, pause=0.05)
    assert got.closed and got.seconds < 4, got
    assert queued(redis_client) == []


@pytest.mark.usefixtures("short_deadlines")
def test_keep_alive_clients_pausing_between_requests_are_not_cut_off(
    ingest_url: str, redis_client: redis.Redis
) -> None:
    # Longer in total than both deadlines, but each request is sent whole and quickly.
    with httpx.Client(base_url=ingest_url, timeout=5) as client:
        for n in range(4):
            answer = client.post("/v1/identify", json={"userId": f"u{n}"}, auth=(WRITE_KEY, ""))
            assert answer.status_code == 200
            time.sleep(0.4)  # an idle client between requests, under uvicorn's keep-alive
    assert len(queued(redis_client)) == 4


def test_pipelined_requests_are_all_answered(ingest_url: str, redis_client: redis.Redis) -> None:
    with connect(ingest_url) as sock:
        sock.sendall(post() + post() + post("Connection: close\r\n"))
        data = b""
        sock.settimeout(5)
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert len(queued(redis_client)) == 3
