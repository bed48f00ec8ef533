"""The on-call page end to end in Debian's chromium (headless, driven by Playwright).

`make test` installs chromium first (`make browser`); a missing browser FAILS this test, never
skips it: CI must not pass without the page having been clicked through.
"""

from __future__ import annotations

import os
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
    expect(page.locator("svg rect")).to_have_count(24)

    page.locator("input[name=reason]").fill("permanent")
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
