"""The on-call page end to end in Debian's chromium (headless, driven by Playwright).

`make test` installs chromium first (`make browser`); a missing browser FAILS this test, never
skips it: CI must not pass without the page having been clicked through.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from cmrelay.dlq.entry import REASON_EXPIRED
from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.envelope import Envelope

from .conftest import TOKEN, add_entry, queued

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium; Playwright's own browser download is never used (or reachable)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_on_call_logs_in_filters_opens_replays_and_purges(
    page: Page, admin_url: str, dlq: DeadLetterQueue, tmp_path: Path
) -> None:
    alpha = add_entry(dlq, "alpha")
    beta = add_entry(dlq, "beta", reason=REASON_EXPIRED, status=503, error="upstream timeout")
    add_entry(dlq, "gamma", age=2 * 3600)

    page.goto(admin_url + "/")
    expect(page).to_have_title("Log in - cmrelay admin")  # redirected: no session yet
    page.get_by_label("Admin token").fill("not the token")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".error")).to_have_text("That is not the admin token.")
    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_title("Dead letters - cmrelay admin")
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"]
    expect(page.locator("tbody tr")).to_have_count(3)
    expect(page.locator("svg.chart rect")).to_have_count(24)

    page.locator("select[name=reason]").select_option("permanent")
    page.locator("input[name=since]").fill("1h")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    page.get_by_role("link", name=alpha[:12]).click()
    expect(page).to_have_title(f"Dead letter {alpha} - cmrelay admin")
    expect(page.locator("main")).to_contain_text("customer:alpha")
    expect(page.locator("main")).to_contain_text("RetryableDeliveryError")
    expect(page.locator("main")).to_contain_text("Country is invalid")

    page.get_by_role("link", name="Replay…").click()
    expect(page.locator("h1")).to_have_text("Replay")
    assert queued(dlq) == []  # the confirmation page itself changes nothing
    page.get_by_role("button", name="Yes, replay").click()
    expect(page.locator(".notice")).to_contain_text("Replayed")
    (raw,) = queued(dlq)
    envelope = Envelope.from_bytes(raw)
    assert envelope.message_id == "msg-alpha" and envelope.replay is True
    entry = dlq.get(alpha)
    assert entry is not None and entry.status == "replayed"

    page.goto(f"{admin_url}/entries/{beta}")
    page.get_by_role("link", name="Purge…").click()
    expect(page.locator("main")).to_contain_text("cannot be undone")
    page.get_by_role("button", name="Yes, purge").click()
    expect(page).to_have_title("Dead letters - cmrelay admin")
    expect(page.locator(".notice")).to_have_text("Purged.")
    assert dlq.get(beta) is None
    expect(page.locator("tbody tr")).to_have_count(2)

    shot = Path(os.environ.get("CMRELAY_SCREENSHOT_DIR", tmp_path)) / "dlq.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000


ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".artifacts" / "screenshots"  # gitignored; docs/images holds the committed pair
VIEWPORTS = [(1280, 800), (390, 844)]


def _log_in(page: Page, admin_url: str) -> None:
    page.goto(admin_url + "/login")
    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_title("Dead letters - cmrelay admin")


def _no_page_overflow(page: Page, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide at a {width} px viewport"


def _seed_a_bad_day(dlq: DeadLetterQueue) -> list[str]:
    """60 entries over the last 20 h, half of them in a 3-hour outage 3-5 h ago; refusals, long
    errors; 3 replayed."""
    ids = []
    for i in range(60):
        expired = i % 3 == 0
        ids.append(add_entry(
            dlq, f"cust-{i:03d}", REASON_EXPIRED if expired else "permanent",
            status=503 if expired else 422,
            age=(3 + i % 3) * 3600 + 60 * i if i < 30 else (i % 20) * 3600 + i,
            error=("upstream unavailable " if expired else "Unprocessable: ") + "x" * 300,
        ))  # fmt: skip
    dlq.replay(ids[:3])
    return ids


@pytest.mark.parametrize(("width", "height"), VIEWPORTS, ids=["1280", "390"])
def test_the_list_pages_fits_the_viewport_and_its_chart_filters_and_pager_work(
    browser: Browser, admin_url: str, dlq: DeadLetterQueue, width: int, height: int
) -> None:
    _seed_a_bad_day(dlq)
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        _log_in(page, admin_url)
        _no_page_overflow(page, width)
        totals = page.locator(".pager .totals").first
        expect(totals).to_have_text("1\u201350 of 60 matching · 57 dead, 3 replayed")
        expect(page.locator("tbody tr")).to_have_count(50)
        expect(page.get_by_role("link", name="Replay all matching…")).to_have_count(0)

        chart = page.get_by_role("img", name=re.compile("Dead letters per hour"))
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        assert box["height"] > 100  # scaled down on a phone, still readable
        table_top = page.locator("table").first.bounding_box()
        assert table_top is not None and box["y"] < table_top["y"]  # above the table
        expect(chart.locator("text", has_text=re.compile("^dead letters$"))).to_have_count(1)

        reasons = page.locator("select[name=reason] option")
        expect(reasons).to_have_text(["any", "permanent", "retry window expired", "partial"])
        statuses = page.locator("select[name=status] option")
        expect(statuses).to_have_text(["any", "dead", "replayed", "HTTP 422", "HTTP 503"])
        expect(page.locator("select[name=error_class] option")).to_contain_text(
            ["any", "PartialDelivery", "PermanentDeliveryError", "RetryableDeliveryError"]
        )
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"admin-list-{width}.png"), full_page=True)
        page.screenshot(path=str(SHOTS / f"admin-list-{width}-top.png"))  # docs/images' pair

        page.locator("a[rel=next]").first.click()
        expect(page.locator(".pager .totals").first).to_have_text(
            "51\u201360 of 60 matching · 57 dead, 3 replayed"
        )
        expect(page.locator("tbody tr")).to_have_count(10)
        _no_page_overflow(page, width)

        page.locator("select[name=reason]").select_option("retry window expired")
        page.locator("select[name=limit]").select_option("25")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator(".pager .totals").first).to_have_text(
            "1\u201320 of 20 matching · 19 dead, 1 replayed"
        )
        expect(page.get_by_role("link", name="Replay all matching…")).to_be_visible()
        assert page.locator("select[name=reason]").input_value() == "retry window expired"

        page.locator("tbody tr a[title='its dead letters']").first.click()
        expect(page.locator("tbody tr")).to_have_count(1)
        page.locator("tbody tr td a").first.click()
        expect(page).to_have_title(re.compile("^Dead letter "))
        _no_page_overflow(page, width)
        page.screenshot(path=str(SHOTS / f"admin-entry-{width}.png"), full_page=True)
    finally:
        context.close()
