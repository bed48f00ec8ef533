"""The on-call page over plain HTTP: sessions, CSRF, escaping, masking, headers, bad input."""

from __future__ import annotations

import httpx

from cmrelay.dlq.store import DeadLetterQueue

from .conftest import API_KEY, TOKEN, add_entry, csrf_of, queued, traced_dead_letter


def test_pages_need_a_session_and_a_wrong_token_is_refused(admin_url: str) -> None:
    with httpx.Client(base_url=admin_url, timeout=10) as client:
        for path in ("/", "/entries/x", "/entries/x/replay", "/replay", "/purge"):
            answer = client.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/login", path
        refused = client.post("/login", data={"token": "nope"})
        assert refused.status_code == 401 and "cmrelay_admin" not in refused.headers.get(
            "set-cookie", ""
        )
        client.cookies.set("cmrelay_admin", "9999999999.abc")
        assert client.get("/").status_code == 303


def test_the_session_cookie_is_httponly_strict_and_not_the_token(admin_url: str) -> None:
    answer = httpx.post(admin_url + "/login", data={"token": TOKEN})
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert TOKEN not in cookie


def test_posts_without_the_csrf_token_change_nothing(
    browser_like: httpx.Client, dlq: DeadLetterQueue
) -> None:
    entry_id = add_entry(dlq, "c")
    for data in ({}, {"csrf": "0" * 32}):
        answer = browser_like.post(f"/entries/{entry_id}/replay", data=data)
        assert answer.status_code == 403
        assert browser_like.post(f"/entries/{entry_id}/purge", data=data).status_code == 403
    assert queued(dlq) == [] and dlq.get(entry_id) is not None


def test_confirmed_replay_and_purge_withcsrf_of(
    browser_like: httpx.Client, dlq: DeadLetterQueue
) -> None:
    entry_id = add_entry(dlq, "ok")
    csrf = csrf_of(browser_like.get(f"/entries/{entry_id}/replay").text)
    done = browser_like.post(f"/entries/{entry_id}/replay", data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"].endswith("?done=replayed")
    again = browser_like.post(f"/entries/{entry_id}/replay", data={"csrf": csrf})
    assert again.headers["location"].endswith("?done=already") and len(queued(dlq)) == 1
    assert browser_like.post(f"/entries/{entry_id}/purge", data={"csrf": csrf}).status_code == 303
    assert dlq.get(entry_id) is None


def test_bulk_replay_and_purge_follow_the_filters(
    browser_like: httpx.Client, dlq: DeadLetterQueue
) -> None:
    keep = add_entry(dlq, "keep", status=503)
    gone = [add_entry(dlq, f"g{n}") for n in range(3)]
    confirm = browser_like.get("/purge", params={"status": "422"})
    assert "Delete 3 matching entries" in confirm.text
    csrf = csrf_of(confirm.text)
    done = browser_like.post("/purge", data={"csrf": csrf, "status": "422"})
    assert done.status_code == 303 and "n=3" in done.headers["location"]
    assert all(dlq.get(i) is None for i in gone) and dlq.get(keep) is not None
    assert browser_like.get("/purge").status_code == 400  # no filter: not offered
    assert browser_like.post("/purge", data={"csrf": csrf}).status_code == 400
    assert browser_like.post("/replay", data={"csrf": csrf}).status_code == 400  # no filter
    assert browser_like.get("/replay").status_code == 400 and queued(dlq) == []
    replay = browser_like.post("/replay", data={"csrf": csrf, "status": "503"})
    assert replay.status_code == 303 and "n=1" in replay.headers["location"]
    assert len(queued(dlq)) == 1


def test_event_data_is_escaped_and_secrets_masked(
    browser_like: httpx.Client, dlq: DeadLetterQueue
) -> None:
    entry_id = add_entry(dlq, "<script>alert(1)</script>", error=f"key {API_KEY} <b>x</b>")
    listing = browser_like.get("/").text
    detail = browser_like.get(f"/entries/{entry_id}").text
    for page in (listing, detail):
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
        assert API_KEY not in page and "<b>x</b>" not in page


def test_pages_carry_security_headers_and_bad_input_is_a_400_page(
    browser_like: httpx.Client,
) -> None:
    page = browser_like.get("/")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    bad = browser_like.get("/", params={"since": "whenever"})
    assert bad.status_code == 400 and "not an ISO time" in bad.text
    assert browser_like.get("/entries/missing").status_code == 404
    assert browser_like.get("/entries/missing/purge").status_code == 404
    assert browser_like.get("/no/such/page").status_code == 404
    huge = browser_like.post("/replay", content=b"a=" + b"x" * 200_000)
    assert huge.status_code == 413


def test_logout_ends_the_session(browser_like: httpx.Client) -> None:
    csrf = csrf_of(browser_like.get("/").text)
    assert browser_like.post("/logout", data={"csrf": csrf}).headers["location"] == "/login"
    assert browser_like.get("/").status_code == 303


def test_the_lookup_page_shows_an_events_trail_and_a_customers_state_escaped(
    browser_like: httpx.Client, dlq: DeadLetterQueue
) -> None:
    entry_id = traced_dead_letter(dlq, "<b>lk</b>")
    assert browser_like.get("/lookup").status_code == 200
    traced = browser_like.get("/lookup", params={"message_id": "msg-<b>lk</b>"})
    assert traced.status_code == 200 and "now: dead_lettered" in traced.text
    assert entry_id in traced.text and "<b>lk</b>" not in traced.text
    state = browser_like.get("/lookup", params={"entity": "customer:<b>lk</b>"})
    assert state.status_code == 200 and entry_id in state.text
    assert browser_like.get("/lookup", params={"message_id": "nope"}).status_code == 404
    assert browser_like.get("/lookup", params={"entity": "lk"}).status_code == 400
