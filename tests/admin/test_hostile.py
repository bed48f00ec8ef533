"""Hostile input against the real admin server over real sockets (issue 12): no input reaches a
500, and every error page still carries the page's security headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from admin.auth import SESSION_SECONDS
from admin.bodies import LOGIN_MAX
from admin.server import uvicorn_config
from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.redis_server import free_port
from cmrelay.settings import Secret, Settings
from tests.servers import serve_in_thread
from tests.support.raw_http import send_until_answered

from .conftest import TOKEN, add_entry

HOSTILE_VALUES = [
    "abc", "-1", "1e9", "99999999999999999999", "\x00", "1.5", "NaN", "  ", "ß", "x" * 3000,
    "9999999999999999999w", "0001-01-01T00:00:00+14:00", "99999-01-01", "<script>",
]  # fmt: skip


@pytest.fixture
def logged_in(admin_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=admin_url, timeout=10) as client:
        assert client.post("/login", data={"token": TOKEN}).status_code == 303
        yield client


def assert_security_headers(answer: httpx.Response) -> None:
    assert answer.headers.get("x-frame-options") == "DENY", answer.headers
    assert "frame-ancestors 'none'" in answer.headers.get("content-security-policy", "")
    assert answer.headers.get("cache-control") == "no-store"


@pytest.mark.parametrize("n", ["abc", "", "-3", "1e3", "٣"])
def test_a_bulk_notice_with_a_bad_count_is_not_a_500(logged_in: httpx.Client, n: str) -> None:
    answer = logged_in.get("/", params={"done": "bulk", "n": n})
    assert answer.status_code == 200, answer.text[:300]
    assert "Done." in answer.text


def test_a_bulk_notice_shows_a_plain_count(logged_in: httpx.Client) -> None:
    assert "Done: 7 entries." in logged_in.get("/", params={"done": "bulk", "n": "7"}).text


def test_hostile_query_values_on_every_page_never_reach_a_500(
    logged_in: httpx.Client, dlq: DeadLetterQueue, admin_url: str
) -> None:
    entry_id = add_entry(dlq, "x")
    pages = ["/", "/replay", "/purge", f"/entries/{entry_id}", f"/entries/{entry_id}/purge"]
    names = ["done", "n", "status", "since", "until", "limit", "text", "unknown"]
    api = httpx.Client(base_url=admin_url, timeout=10, headers={"Authorization": f"Bearer {TOKEN}"})
    with api:
        for value in HOSTILE_VALUES:
            for name in names:
                for page in pages:
                    answer = logged_in.get(page, params={name: value, "done": "bulk"})
                    assert answer.status_code < 500, (page, name, value, answer.text[:200])
                    assert_security_headers(answer)
                answer = api.get("/api/dlq", params={name: value})
                assert answer.status_code < 500, (name, value, answer.text[:200])


@pytest.fixture
def stats_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug (not bad input) deep in a handler: the DLQ's stats raise."""

    def broken(self: DeadLetterQueue) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(DeadLetterQueue, "stats", broken)


@pytest.mark.usefixtures("stats_breaks")
def test_an_unexpected_error_is_a_500_page_with_the_security_headers(
    logged_in: httpx.Client, admin_url: str
) -> None:
    page = logged_in.get("/")
    assert page.status_code == 500
    assert_security_headers(page)
    assert "secret internals" not in page.text and "Traceback" not in page.text
    assert re.search(r"<h1>Something went wrong</h1>", page.text)
    api = httpx.get(
        admin_url + "/api/dlq/stats", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert api.status_code == 500 and api.json()["error"] == "internal_error"
    assert "secret internals" not in api.text


# --- bodies over the cap: refused by Content-Length and while streaming ---------------------
FORM = b"Content-Type: application/x-www-form-urlencoded\r\n"
CHUNK = b"a" * 65536
CHUNKED_PIECE = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"


@pytest.mark.parametrize("path", ["/login", "/api/dlq/replay"])
def test_an_announced_huge_body_is_a_413_before_it_is_sent(admin_url: str, path: str) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {TOKEN}\r\n".encode()
        + FORM
        + b"Content-Length: 200000000\r\n\r\n"
    )
    got = send_until_answered(admin_url, head, b"a" * 1024, max_bytes=2_000_000, seconds=10)
    assert got.status == 413, got.response[:300]
    assert got.sent < 2_000_000  # answered long before the 200 MB it announced


def test_an_unauthenticated_streamed_login_body_is_cut_off_with_a_413(admin_url: str) -> None:
    head = b"POST /login HTTP/1.1\r\nHost: admin\r\n" + FORM + b"Transfer-Encoding: chunked\r\n\r\n"
    got = send_until_answered(admin_url, head, CHUNKED_PIECE, max_bytes=50_000_000, seconds=20)
    assert got.status == 413, got.response[:300]
    assert b"frame-ancestors 'none'" in got.response  # the error page's headers
    assert got.closed  # the server stopped reading: no reading (and dropping) 50 MB
    assert got.sent < 20_000_000, got.sent


def test_a_streamed_api_body_over_the_cap_is_a_413(admin_url: str) -> None:
    head = (
        f"POST /api/dlq/replay HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    got = send_until_answered(admin_url, head, CHUNKED_PIECE, max_bytes=50_000_000, seconds=20)
    assert got.status == 413 and got.closed, got.response[:300]


def test_a_login_body_just_over_the_login_cap_is_a_413_and_a_normal_one_logs_in(
    admin_url: str,
) -> None:
    padded = {"token": TOKEN, "pad": "x" * LOGIN_MAX}
    assert httpx.post(admin_url + "/login", data=padded, timeout=10).status_code == 413
    assert httpx.post(admin_url + "/login", data={"token": TOKEN}, timeout=10).status_code == 303


# --- sessions end server-side ----------------------------------------------------------------
def _session_cookie(admin_url: str) -> str:
    answer = httpx.post(admin_url + "/login", data={"token": TOKEN}, timeout=10)
    assert answer.status_code == 303
    return answer.cookies["cmrelay_admin"]


def test_logout_ends_the_session_for_a_copied_cookie_too(admin_url: str) -> None:
    cookie = _session_cookie(admin_url)
    with httpx.Client(base_url=admin_url, timeout=10, cookies={"cmrelay_admin": cookie}) as user:
        page = user.get("/")
        assert page.status_code == 200
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf is not None
        assert user.post("/logout", data={"csrf": csrf.group(1)}).status_code == 303
    # The stolen or copied cookie, presented after logout by another client:
    with httpx.Client(base_url=admin_url, timeout=10, cookies={"cmrelay_admin": cookie}) as thief:
        again = thief.get("/")
        assert again.status_code == 303 and again.headers["location"] == "/login"


def test_sessions_are_random_stored_hashed_with_a_ttl(admin_url: str, dlq: DeadLetterQueue) -> None:
    first, second = _session_cookie(admin_url), _session_cookie(admin_url)
    assert first != second and TOKEN not in first
    stored = [k.decode() for k in dlq.client.scan_iter(f"{dlq.keys.prefix}:admin:session:*")]
    assert len(stored) == 2 and not any(first in k or second in k for k in stored)
    assert all(0 < dlq.client.ttl(k) <= SESSION_SECONDS for k in stored)


def test_a_session_started_under_another_token_is_refused(
    admin_url: str, admin_settings: Settings
) -> None:
    cookie = _session_cookie(admin_url)
    rotated = replace(admin_settings, admin_token=Secret("rotated-" + TOKEN))
    with serve_in_thread(uvicorn_config(rotated, "127.0.0.1", free_port()), "rotated") as url:
        answer = httpx.get(url + "/", cookies={"cmrelay_admin": cookie}, timeout=10)
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
