"""The admin JSON API over a real uvicorn server: auth, every operation, bad input as 4xx."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from cmrelay.dlq.entry import REASON_EXPIRED
from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.envelope import Envelope

from .conftest import API_KEY, TOKEN, add_entry, queued, traced_dead_letter

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(admin_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=admin_url, headers=AUTH, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/dlq"), ("GET", "/api/dlq/stats"), ("GET", "/api/dlq/x"),
     ("POST", "/api/dlq/replay"), ("POST", "/api/dlq/purge"), ("GET", "/api/trace/m"),
     ("GET", "/api/entity/customer:x")],
)  # fmt: skip
@pytest.mark.parametrize("auth", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_every_route_needs_the_bearer_token(
    admin_url: str, method: str, path: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    answer = httpx.request(method, admin_url + path, headers=headers, json={"all": True})
    assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
    assert answer.headers["www-authenticate"] == "Bearer"


def test_stats_and_list_with_filters(api: httpx.Client, dlq: DeadLetterQueue) -> None:
    old = add_entry(dlq, "old", reason=REASON_EXPIRED, status=503, age=3 * 3600)
    new = add_entry(dlq, "new")
    stats = api.get("/api/dlq/stats").json()
    assert stats["total"] == 2 and stats["by_status_code"] == {"503": 1, "422": 1}
    assert len(stats["hourly"]) == 24
    rows = api.get("/api/dlq").json()["entries"]
    assert [r["id"] for r in rows] == [new, old]
    assert {"id", "reason", "status", "message_ids", "attempts", "last_error"} <= set(rows[0])
    for params, expected in (
        ({"reason": REASON_EXPIRED}, [old]),
        ({"status": "422"}, [new]),
        ({"entity": "customer:old"}, [old]),
        ({"since": "1h"}, [new]),
        ({"text": "bad country"}, [new, old]),
        ({"limit": "1"}, [new]),
    ):
        assert [r["id"] for r in api.get("/api/dlq", params=params).json()["entries"]] == expected


def test_show_is_masked_and_unknown_is_404(api: httpx.Client, dlq: DeadLetterQueue) -> None:
    entry_id = add_entry(dlq, "s", error=f"key {API_KEY} refused")
    view = api.get(f"/api/dlq/{entry_id}").json()
    assert view["events"][0]["event"]["userId"] == "s"
    assert [a["status_code"] for a in view["history"]] == [503, 422]
    assert view["last_response"] == '{"errors":"Country is invalid"}'
    assert API_KEY not in str(view) and "key *** refused" in view["last_error"]
    missing = api.get("/api/dlq/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_replay_dry_run_then_once_only(api: httpx.Client, dlq: DeadLetterQueue) -> None:
    entry_id = add_entry(dlq, "r")
    dry = api.post("/api/dlq/replay", json={"ids": [entry_id], "dry_run": True}).json()
    assert dry["dry_run"] is True and dry["replayed"] == [entry_id] and queued(dlq) == []
    first = api.post("/api/dlq/replay", json={"ids": [entry_id]}).json()
    second = api.post("/api/dlq/replay", json={"ids": [entry_id]}).json()
    assert first["replayed"] == [entry_id] and second["skipped"] == [entry_id]
    (raw,) = queued(dlq)
    assert Envelope.from_bytes(raw).replay is True


def test_replay_by_filter_and_all(api: httpx.Client, dlq: DeadLetterQueue) -> None:
    expired = add_entry(dlq, "x", reason=REASON_EXPIRED)
    other = add_entry(dlq, "y")
    by_filter = api.post("/api/dlq/replay", json={"filter": {"reason": REASON_EXPIRED}}).json()
    assert by_filter["replayed"] == [expired]
    assert api.post("/api/dlq/replay", json={"all": True}).json()["replayed"] == [other]
    assert len(queued(dlq)) == 2


def test_purge_needs_confirm_and_a_selection(api: httpx.Client, dlq: DeadLetterQueue) -> None:
    old = add_entry(dlq, "old", age=8 * 86400)
    fresh = add_entry(dlq, "fresh")
    refused = api.post("/api/dlq/purge", json={"older_than": "7d"})
    assert refused.status_code == 400 and refused.json()["error"] == "confirm_required"
    assert dlq.get(old) is not None
    done = api.post("/api/dlq/purge", json={"older_than": "7d", "confirm": True}).json()
    assert done == {"purged": 1, "missing": []} and dlq.get(old) is None
    assert api.post("/api/dlq/purge", json={"confirm": True}).status_code == 400
    by_id = api.post("/api/dlq/purge", json={"ids": [fresh, "gone"], "confirm": True}).json()
    assert by_id == {"purged": 1, "missing": ["gone"]}


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b'{"ids": "abc"}', b'{"ids": [1]}', b'{"filter": []}',
     b'{"filter": {"since": "someday"}}', b'{"filter": {"bogus": "1"}}', b'{"all": "yes"}',
     b'{"filter": {"status": "lost"}}', b"{}", b'{"ids": [""]}'],
)  # fmt: skip
def test_bad_replay_bodies_are_400_json(api: httpx.Client, body: bytes) -> None:
    answer = api.post("/api/dlq/replay", content=body)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [b'{"older_than": 7, "confirm": true}', b'{"older_than": "7 days", "confirm": true}',
     b'{"ids": ["a"], "confirm": "yes"}'],
)  # fmt: skip
def test_bad_purge_bodies_are_400_json(api: httpx.Client, body: bytes) -> None:
    answer = api.post("/api/dlq/purge", content=body)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_a_purge_body_over_the_cap_is_413_json(api: httpx.Client) -> None:
    answer = api.post("/api/dlq/purge", content=b"x" * 1_000_001)
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"


def test_bad_queries_unknown_routes_and_methods_are_json(api: httpx.Client) -> None:
    for params in ({"since": "nope"}, {"limit": "0"}, {"limit": "x"}, {"nonsense": "1"}):
        answer = api.get("/api/dlq", params=params)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request", params
    assert api.get("/api/nothing").json()["error"] == "not_found"
    wrong = api.delete("/api/dlq/stats")
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_the_admin_command_refuses_to_start_without_a_token(redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ADMIN_TOKEN"}
    env.update(REDIS_URL=redis_url, ADMIN_PORT="1")
    done = subprocess.run(
        [sys.executable, "-m", "cmrelay_cli", "admin"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "cmrelay: configuration error: ADMIN_TOKEN is empty: set it to start the admin API"
    ]


def test_trace_and_entity_views_are_served_as_the_cli_prints_them(
    api: httpx.Client, dlq: DeadLetterQueue
) -> None:
    entry_id = traced_dead_letter(dlq, "viewed")
    traced = api.get("/api/trace/msg-viewed").json()
    assert traced["state"] == "dead_lettered" and [d["id"] for d in traced["dead_letters"]] == [
        entry_id
    ]
    assert api.get("/api/trace/never").status_code == 404
    view = api.get("/api/entity/customer:viewed").json()
    assert [d["id"] for d in view["dead_letters"]] == [entry_id]
    refused = api.get("/api/entity/viewed")
    assert refused.status_code == 400 and "customer:" in refused.json()["message"]
