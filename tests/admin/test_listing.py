"""The list page and /api/dlq over HTTP on real Redis: pages with totals, filter links, bulk
replay offered (and accepted) only for a filter with something still dead."""

from __future__ import annotations

import re
from html import unescape

import httpx

from admin.context import AdminContext
from cmrelay.dlq import query as q
from cmrelay.dlq.entry import REASON_EXPIRED
from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.settings import Settings

from .conftest import TOKEN, add_entry, csrf_of, queued

EN_DASH = "\u2013"


def _seed(dlq: DeadLetterQueue, n: int) -> list[str]:
    """n entries a second apart, newest first; every fifth one `retry window expired`."""
    return [
        add_entry(dlq, f"u{i:03d}", REASON_EXPIRED if i % 5 == 0 else "permanent", age=i)
        for i in range(n)
    ]


def _totals(html: str) -> str:
    match = re.search(r'<span class="totals">(.*?)</span>', html)
    assert match is not None
    return unescape(match.group(1))


def _link(html: str, rel: str) -> str | None:
    match = re.search(rf'<a rel="{rel}" href="([^"]+)"', html)
    return unescape(match.group(1)) if match else None


def _row_ids(html: str) -> list[str]:
    return re.findall(r'<tr><td><a href="/entries/([0-9a-f]+)">', html)


def test_pages_carry_totals_and_prev_next_links_that_keep_filters(
    browser_like: httpx.Client, dlq: DeadLetterQueue
) -> None:
    ids = _seed(dlq, 60)
    dlq.replay(ids[:3])
    first = browser_like.get("/", params={"limit": "25"}).text
    assert _totals(first) == f"1{EN_DASH}25 of 60 matching · 57 dead, 3 replayed"
    assert _row_ids(first) == ids[:25] and _link(first, "prev") is None
    assert _link(first, "next") == "/?limit=25&offset=25"
    third = browser_like.get("/?limit=25&offset=50").text
    assert _totals(third) == f"51{EN_DASH}60 of 60 matching · 57 dead, 3 replayed"
    assert _row_ids(third) == ids[50:] and _link(third, "next") is None
    assert _link(third, "prev") == "/?limit=25&offset=25"

    expired = [i for n, i in enumerate(ids) if n % 5 == 0]  # 12, the first of them replayed
    page = browser_like.get("/", params={"reason": REASON_EXPIRED, "limit": "25"}).text
    assert _totals(page) == f"1{EN_DASH}12 of 12 matching · 11 dead, 1 replayed"
    assert _row_ids(page) == expired
    default = browser_like.get("/", params={"reason": REASON_EXPIRED, "status": "dead"}).text
    assert _totals(default).startswith(f"1{EN_DASH}11 of 11 matching")
    by_page = browser_like.get("/?reason=permanent&limit=25").text
    assert _link(by_page, "next") == "/?reason=permanent&limit=25&offset=25"
    assert (
        _row_ids(browser_like.get(_link(by_page, "next") or "").text)
        == [i for n, i in enumerate(ids) if n % 5 != 0][25:48]
    )
    assert browser_like.get("/?limit=7").status_code == 400
    assert browser_like.get("/?offset=-3").status_code == 400


def test_the_chart_comes_before_the_table_and_rows_link_to_the_entity(
    browser_like: httpx.Client, dlq: DeadLetterQueue
) -> None:
    mine = [add_entry(dlq, "acme"), add_entry(dlq, "acme", age=5)]
    add_entry(dlq, "other")
    page = browser_like.get("/").text
    assert page.index('<svg class="chart" role="img"') < page.index("<table>")
    assert 'href="/?entity=customer%3Aacme"' in page
    assert 'href="/lookup?entity=customer%3Aacme"' in page
    listed = browser_like.get("/?entity=customer%3Aacme")
    assert set(_row_ids(listed.text)) == set(mine)
    state = browser_like.get("/lookup?entity=customer%3Aacme")
    assert state.status_code == 200 and mine[0] in state.text
    detail = browser_like.get(f"/entries/{mine[0]}").text
    assert 'href="/?entity=customer%3Aacme"' in detail


def test_replay_all_is_offered_and_accepted_only_with_a_filter_and_dead_entries(
    browser_like: httpx.Client, dlq: DeadLetterQueue
) -> None:
    ids = [add_entry(dlq, f"r{n}", status=503) for n in range(3)]
    add_entry(dlq, "other", status=422)
    assert "Replay all matching" not in browser_like.get("/").text  # no filter
    filtered = browser_like.get("/", params={"status": "503"}).text
    assert 'href="/replay?status=503"' in filtered
    confirm = browser_like.get("/replay", params={"status": "503"})
    assert "the 3 matching entries still dead" in confirm.text
    csrf = csrf_of(confirm.text)
    done = browser_like.post("/replay", data={"csrf": csrf, "status": "503"})
    assert done.status_code == 303 and "n=3" in done.headers["location"]
    assert len(queued(dlq)) == 3
    after = browser_like.get("/", params={"status": "503"}).text
    assert "Replay all matching" not in after and "Purge all matching" in after
    assert _totals(after).endswith("0 dead, 3 replayed")
    again = browser_like.get("/replay", params={"status": "503"})
    assert again.status_code == 400 and "no matching entry is still dead" in again.text
    refused = browser_like.post("/replay", data={"csrf": csrf, "status": "503"})
    assert refused.status_code == 400 and len(queued(dlq)) == 3
    assert browser_like.post("/replay", data={"csrf": csrf}).status_code == 400
    assert all((e := dlq.get(i)) is not None and e.status == "replayed" for i in ids)


def test_the_api_list_carries_total_offset_and_limit(admin_url: str, dlq: DeadLetterQueue) -> None:
    ids = _seed(dlq, 7)
    dlq.replay(ids[:1])
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=admin_url, headers=auth, timeout=10) as api:
        page = api.get("/api/dlq", params={"limit": "3", "offset": "3"}).json()
        assert [e["id"] for e in page["entries"]] == ids[3:6]
        assert (page["total"], page["offset"], page["limit"]) == (7, 3, 3)
        assert (page["dead"], page["replayed"]) == (6, 1)
        whole = api.get("/api/dlq").json()
        assert (whole["total"], whole["offset"], whole["limit"], len(whole["entries"])) == (
            7, 0, 100, 7,
        )  # fmt: skip
        expired = api.get("/api/dlq", params={"reason": REASON_EXPIRED}).json()
        assert expired["total"] == 2 and expired["dead"] == 1
        bad = api.get("/api/dlq", params={"offset": "x"})
        assert bad.status_code == 400 and "offset" in bad.json()["message"]


def test_replay_outcomes_reach_only_the_replayed_entries(
    admin_settings: Settings, dlq: DeadLetterQueue
) -> None:
    ctx = AdminContext.from_settings(admin_settings, dlq)
    kept, replayed = add_entry(dlq, "kept"), add_entry(dlq, "again")
    assert dlq.replay([replayed]) == [replayed]
    rows = {r["id"]: r for r in ctx.views(dlq.list(), q.summary)}
    assert "replay" not in rows[kept]  # still dead: nothing to follow
    # Its events have no trail (no worker took them here), so what became of them is unknown.
    assert rows[replayed]["replay"]["state"] == "unknown"
    assert rows[replayed]["replay"]["dead_letter_ids"] == []
    (detail,) = ctx.views([dlq.get(kept)], q.detail)  # type: ignore[list-item]
    assert "replay" not in detail
